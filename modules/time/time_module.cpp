#include "modules/time/time_module.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace xmppd::modules {

namespace {

constexpr std::string_view kTime = "urn:xmpp:time";

// XEP-0082 DateTime in UTC with milliseconds, e.g. 2006-12-19T17:58:35.123Z.
std::string utcNow() {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    return buf;
}

}  // namespace

Registrations TimeModule::start(ModuleContext&) {
    Registrations regs;
    regs.features = {std::string(kTime)};
    regs.iqHandlers.push_back(
        {IqScope::Server, std::string(kTime), [](const IqRequest& req, const IqResponder& r) {
             if (req.iq.attr("type") != "get" || req.payload.name() != "time") {
                 // XEP-0202 §3: the time can only be asked for.
                 r.error(xmpp::StanzaError(req.iq.attr("type") == "get" ? xmpp::StanzaCondition::BadRequest
                                                                        : xmpp::StanzaCondition::NotAllowed));
                 return;
             }
             xmpp::Element time("time", std::string(kTime));
             time.addChild("tzo", std::string(kTime)).addText("+00:00");
             time.addChild("utc", std::string(kTime)).addText(utcNow());
             r.result(&time);
         }});
    return regs;
}

}  // namespace xmppd::modules
