#include "modules/roster/store.hpp"

namespace xmppd::roster::store {

namespace {

const storage::Migration kMigrations[] = {
    {"roster", 1,
     "CREATE TABLE roster_items (host TEXT NOT NULL, username TEXT NOT NULL, contact TEXT NOT NULL, "
     "in_roster INTEGER NOT NULL, name TEXT NOT NULL, subscription TEXT NOT NULL, pending_out INTEGER NOT "
     "NULL, "
     "pending_in INTEGER NOT NULL, pre_approved INTEGER NOT NULL, groups TEXT NOT NULL, pending_stanza TEXT "
     "NOT "
     "NULL, PRIMARY KEY (host, username, contact));"
     "CREATE TABLE roster_versions (host TEXT NOT NULL, username TEXT NOT NULL, version BIGINT NOT NULL, "
     "PRIMARY KEY (host, username))",
     "CREATE TABLE roster_items (host TEXT COLLATE \"C\" NOT NULL, username TEXT COLLATE \"C\" NOT NULL, "
     "contact TEXT COLLATE \"C\" NOT NULL, in_roster INTEGER NOT NULL, name TEXT NOT NULL, subscription TEXT "
     "NOT "
     "NULL, pending_out INTEGER NOT NULL, pending_in INTEGER NOT NULL, pre_approved INTEGER NOT NULL, groups "
     "TEXT "
     "NOT NULL, pending_stanza TEXT NOT NULL, PRIMARY KEY (host, username, contact));"
     "CREATE TABLE roster_versions (host TEXT COLLATE \"C\" NOT NULL, username TEXT COLLATE \"C\" NOT NULL, "
     "version BIGINT NOT NULL, PRIMARY KEY (host, username))"},
};

// Groups are stored newline-separated: a group name cannot contain a
// newline after our validation (control characters are refused).
std::string joinGroups(const std::vector<std::string>& groups) {
    std::string out;
    for (const auto& g : groups) {
        if (!out.empty()) {
            out += '\n';
        }
        out += g;
    }
    return out;
}

std::vector<std::string> splitGroups(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) {
            nl = text.size();
        }
        out.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

const char* kColumns =
    "contact, in_roster, name, subscription, pending_out, pending_in, pre_approved, groups, pending_stanza";

Item fromRow(const storage::Row& r) {
    Item i;
    i.contact = r.text(0);
    i.inRoster = r.integer(1) != 0;
    i.name = r.text(2);
    i.state.sub = subFromString(r.text(3));
    i.state.pendingOut = r.integer(4) != 0;
    i.state.pendingIn = r.integer(5) != 0;
    i.state.preApproved = r.integer(6) != 0;
    i.groups = splitGroups(r.text(7));
    i.pendingStanza = r.text(8);
    return i;
}

}  // namespace

std::span<const storage::Migration> migrations() {
    return kMigrations;
}

bool lockAccount(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.dialect() == storage::Dialect::Postgres
                 ? c.exec("SELECT 1 FROM accounts WHERE host = $1 AND username = $2 FOR UPDATE", {host, user})
                 : c.exec("SELECT 1 FROM accounts WHERE host = $1 AND username = $2", {host, user});
    return !r.rows.empty();
}

std::vector<Item> load(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.exec(std::string("SELECT ") + kColumns +
                        " FROM roster_items WHERE host = $1 AND username = $2 ORDER BY contact",
                    {host, user});
    std::vector<Item> out;
    for (const auto& row : r.rows) {
        out.push_back(fromRow(row));
    }
    return out;
}

std::optional<Item> get(storage::Connection& c, const std::string& host, const std::string& user,
                        const std::string& contact) {
    auto r = c.exec(std::string("SELECT ") + kColumns +
                        " FROM roster_items WHERE host = $1 AND username = $2 AND contact = $3",
                    {host, user, contact});
    if (r.rows.empty()) {
        return std::nullopt;
    }
    return fromRow(r.rows.front());
}

int64_t countInRoster(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.exec("SELECT COUNT(*) FROM roster_items WHERE host = $1 AND username = $2 AND in_roster = 1",
                    {host, user});
    return r.rows.front().integer(0);
}

void put(storage::Connection& c, const std::string& host, const std::string& user, const Item& i) {
    auto b = [](bool v) { return std::string(v ? "1" : "0"); };
    c.exec(
        "INSERT INTO roster_items (host, username, contact, in_roster, name, subscription, pending_out, "
        "pending_in, "
        "pre_approved, groups, pending_stanza) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT (host, username, contact) DO UPDATE SET in_roster = excluded.in_roster, name = "
        "excluded.name, "
        "subscription = excluded.subscription, pending_out = excluded.pending_out, pending_in = "
        "excluded.pending_in, "
        "pre_approved = excluded.pre_approved, groups = excluded.groups, pending_stanza = "
        "excluded.pending_stanza",
        {host, user, i.contact, b(i.inRoster), i.name, std::string(toString(i.state.sub)),
         b(i.state.pendingOut), b(i.state.pendingIn), b(i.state.preApproved), joinGroups(i.groups),
         i.pendingStanza});
}

bool remove(storage::Connection& c, const std::string& host, const std::string& user,
            const std::string& contact) {
    return c.exec("DELETE FROM roster_items WHERE host = $1 AND username = $2 AND contact = $3",
                  {host, user, contact})
               .affected > 0;
}

int64_t version(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.exec("SELECT version FROM roster_versions WHERE host = $1 AND username = $2", {host, user});
    return r.rows.empty() ? 0 : r.rows.front().integer(0);
}

int64_t bumpVersion(storage::Connection& c, const std::string& host, const std::string& user) {
    c.exec(
        "INSERT INTO roster_versions (host, username, version) VALUES ($1, $2, 1) "
        "ON CONFLICT (host, username) DO UPDATE SET version = roster_versions.version + 1",
        {host, user});
    return version(c, host, user);
}

void removeUser(storage::Connection& c, const std::string& host, const std::string& user) {
    storage::Transaction tx(c);
    c.exec("DELETE FROM roster_items WHERE host = $1 AND username = $2", {host, user});
    c.exec("DELETE FROM roster_versions WHERE host = $1 AND username = $2", {host, user});
    tx.commit();
}

}  // namespace xmppd::roster::store
