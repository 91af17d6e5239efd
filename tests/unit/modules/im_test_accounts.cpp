#include "im_test_accounts.hpp"

#include "storage/accounts.hpp"
#include "tests/unit/storage/test_db.hpp"

namespace xmppd::test {

std::unique_ptr<storage::Connection> migratedWith(storage::test::TestDb& db,
                                                  std::span<const storage::Migration> migrations) {
    auto conn = db.connect();
    storage::migrate(*conn, storage::accounts::migrations());
    storage::migrate(*conn, migrations);
    return conn;
}

void createAccount(storage::Connection& c, const std::string& host, const std::string& user) {
    storage::Account a;
    a.host = host;
    a.username = user;
    a.salt = "c2FsdA==";
    a.iterations = 4096;
    a.storedKeySha1 = a.serverKeySha1 = "a2V5";
    a.storedKeySha256 = a.serverKeySha256 = "a2V5";
    a.createdAt = 1700000000;
    storage::accounts::create(c, a);
}

}  // namespace xmppd::test
