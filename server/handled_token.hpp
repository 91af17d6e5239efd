#pragma once

#include <memory>

namespace xmppd {

// Held while the server has not yet taken responsibility for an inbound
// stanza; when the last copy is released the sender's session counts the
// stanza as handled (XEP-0198 'h'). A handler that needs a durable write
// before that (offline storage) keeps a copy until its commit.
using HandledToken = std::shared_ptr<void>;

}  // namespace xmppd
