# Sources of the JID and SASL part of the xmpp library, relative to xmpp/.
set(XMPP_JID_SASL_SOURCES jid.cpp sasl/crypto.cpp sasl/scram.cpp sasl/plain.cpp)
set(XMPP_JID_SASL_LIBS PkgConfig::LIBIDN PkgConfig::LIBIDN2 OpenSSL::Crypto)
