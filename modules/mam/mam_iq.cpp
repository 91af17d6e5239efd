// The XEP-0313 iq protocol of the archive module: queries, preferences,
// metadata, and disco#info of the account.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "modules/mam/mam_impl.hpp"
#include "modules/mam/query.hpp"
#include "server/router.hpp"
#include "storage/pool.hpp"
#include "xmpp/ns.hpp"

namespace xmppd::modules {

using xmpp::Element;
using xmpp::Jid;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

namespace {

StanzaError busy() {
    return StanzaError(StanzaCondition::ResourceConstraint, "the archive is busy, try again later");
}

StanzaError storageFailed() {
    return StanzaError(StanzaCondition::InternalServerError, "the archive is unavailable");
}

// The session that sent a query, if it is still there.
std::shared_ptr<Session> sessionOf(Router& router, const Jid& full) {
    if (full.isBare()) {
        return nullptr;
    }
    for (auto& r : router.resources(full.bare())) {
        if (r.resource == full.resource()) {
            return r.session;
        }
    }
    return nullptr;
}

}  // namespace

void MamModule::Impl::onIq(const IqRequest& req, const IqResponder& r) {
    // XEP-0313 §7.1: a user archive is its owner's alone.
    if (req.from.bare() != req.to.bare()) {
        r.error(StanzaError(StanzaCondition::Forbidden, "only the owner may use this archive"));
        return;
    }
    const std::string& name = req.payload.name();
    bool get = req.iq.attr("type") == "get";
    if (name == "query") {
        if (get) {
            Element form = mam::queryForm();
            r.result(&form);
        } else {
            runQuery(req, r);
        }
    } else if (name == "prefs") {
        if (get) {
            Element prefsElement = mam::renderPrefs(prefsOf(req.to.bareStr()));
            r.result(&prefsElement);
        } else {
            setPrefs(req, r);
        }
    } else if (name == "metadata" && get) {
        getMetadata(req, r);
    } else {
        r.error(StanzaError(StanzaCondition::FeatureNotImplemented));
    }
}

void MamModule::Impl::onDiscoInfo(const IqRequest& req, const IqResponder& r) const {
    if (req.iq.attr("type") != "get") {
        r.error(StanzaError(StanzaCondition::NotAllowed));
        return;
    }
    if (req.payload.hasAttr("node")) {
        r.error(StanzaError(StanzaCondition::ItemNotFound));
        return;
    }
    std::string ns(xmpp::ns::kDiscoInfo);
    Element q("query", ns);
    q.addChild("identity", ns).setAttr("category", "account").setAttr("type", "registered");
    for (auto feature : {xmpp::ns::kDiscoInfo, mam::kNsMam, mam::kNsMamExtended, mam::kNsSid}) {
        q.addChild("feature", ns).setAttr("var", feature);
    }
    r.result(&q);
}

// Results go straight to the requesting session rather than through
// Router::route: they are for that one session (never to another resource
// or offline storage when it is gone, never carbon-copied), and because the
// messages and the iq result are handed to the same session from this one
// thread, in order, the results arrive before the <fin/> (§4.2).
void MamModule::Impl::runQuery(const IqRequest& req, const IqResponder& r) {
    auto parsed = mam::parseQuery(req.payload, maxPageSize);
    if (auto* error = std::get_if<StanzaError>(&parsed)) {
        r.error(*error);
        return;
    }
    auto request = std::get<mam::QueryRequest>(std::move(parsed));
    request.query.host = req.to.domain();
    request.query.user = req.to.local();
    auto self = shared_from_this();
    Jid requester = req.from;
    Jid owner = req.to.bare();
    std::string iqId(req.iq.attr("id"));
    bool queued = pool->submit([self, request, requester, owner, iqId, r](storage::Connection& c) {
        std::optional<mam::Page> page;
        try {
            self->flush(c);
            page = mam::store::query(c, request.query);
        } catch (const storage::Error& e) {
            spdlog::warn("mam: query of {} failed: {}", owner.str(), e.what());
            r.error(storageFailed());
            return;
        }
        if (!page) {
            r.error(StanzaError(StanzaCondition::ItemNotFound, "no such message in the archive"));
            return;
        }
        auto session = sessionOf(*self->router, requester);
        if (!session) {
            return;  // the requester is gone; nobody to answer
        }
        std::vector<const mam::ArchivedMessage*> order;
        for (const auto& item : page->items) {
            order.push_back(&item);
        }
        if (request.flipPage) {
            std::reverse(order.begin(), order.end());
        }
        for (const auto* item : order) {
            auto original = mam::parseStored(item->stanza);
            if (!original) {
                spdlog::error("mam: archived message {} of {} does not parse; skipped",
                              mam::renderId(item->id), owner.str());
                continue;
            }
            session->deliver(mam::resultMessage(requester.str(), owner.str(), request.queryId, *item,
                                                std::move(*original)));
        }
        Element result("iq", std::string(xmpp::ns::kClient));
        result.setAttr("type", "result").setAttr("id", iqId).setAttr("to", requester.str());
        result.setAttr("from", owner.str());
        result.addChild(mam::fin(*page));
        session->deliver(std::move(result));
    });
    if (!queued) {
        r.error(busy());
    }
}

void MamModule::Impl::setPrefs(const IqRequest& req, const IqResponder& r) {
    auto parsed = mam::parsePrefs(req.payload);
    if (auto* error = std::get_if<StanzaError>(&parsed)) {
        r.error(*error);
        return;
    }
    auto prefsValue = std::get<mam::Prefs>(std::move(parsed));
    auto self = shared_from_this();
    Jid owner = req.to.bare();
    bool queued = pool->submit([self, prefsValue, owner, r](storage::Connection& c) {
        try {
            mam::store::savePrefs(c, owner.domain(), owner.local(), prefsValue);
        } catch (const storage::Error& e) {
            spdlog::warn("mam: saving the preferences of {} failed: {}", owner.str(), e.what());
            r.error(storageFailed());
            return;
        }
        self->prefs.set(owner.str(), prefsValue);
        Element answer = mam::renderPrefs(prefsValue);
        r.result(&answer);
    });
    if (!queued) {
        r.error(busy());
    }
}

void MamModule::Impl::getMetadata(const IqRequest& req, const IqResponder& r) {
    auto self = shared_from_this();
    Jid owner = req.to.bare();
    bool queued = pool->submit([self, owner, r](storage::Connection& c) {
        try {
            self->flush(c);
            Element answer = mam::metadata(mam::store::bounds(c, owner.domain(), owner.local()));
            r.result(&answer);
        } catch (const storage::Error& e) {
            spdlog::warn("mam: metadata of {} failed: {}", owner.str(), e.what());
            r.error(storageFailed());
        }
    });
    if (!queued) {
        r.error(busy());
    }
}

}  // namespace xmppd::modules
