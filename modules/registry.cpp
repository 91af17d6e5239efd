// The compiled-in modules. One line per module; only this file and main.cpp's
// composition know the list.
#include "modules/blocking/blocking_module.hpp"
#include "modules/carbons/carbons_module.hpp"
#include "modules/disco/disco_module.hpp"
#include "modules/last/last_module.hpp"
#include "modules/mam/mam_module.hpp"
#include "modules/offline/offline_module.hpp"
#include "modules/ping/ping_module.hpp"
#include "modules/private/private_module.hpp"
#include "modules/register/register_module.hpp"
#include "modules/roster/roster_module.hpp"
#include "modules/sms_register/sms_register_module.hpp"
#include "modules/time/time_module.hpp"
#include "modules/vcard/vcard_module.hpp"
#include "modules/version/version_module.hpp"

namespace xmppd {

template <typename M>
ModuleDescriptor describe(std::string name) {
    return ModuleDescriptor{std::move(name), M::options(), [] { return std::make_unique<M>(); }};
}

const std::vector<ModuleDescriptor>& moduleRegistry() {
    // One module per line, for clean merges.
    // clang-format off
    static const std::vector<ModuleDescriptor> registry{
        describe<modules::BlockingModule>("blocking"),
        describe<modules::CarbonsModule>("carbons"),
        describe<modules::DiscoModule>("disco"),
        describe<modules::LastModule>("last"),
        describe<modules::MamModule>("mam"),
        describe<modules::OfflineModule>("offline"),
        describe<modules::PingModule>("ping"),
        describe<modules::PrivateModule>("private"),
        describe<modules::RegisterModule>("register"),
        describe<modules::RosterModule>("roster"),
        describe<modules::SmsRegisterModule>("sms_register"),
        describe<modules::TimeModule>("time"),
        describe<modules::VcardModule>("vcard"),
        describe<modules::VersionModule>("version"),
    };
    // clang-format on
    return registry;
}

}  // namespace xmppd
