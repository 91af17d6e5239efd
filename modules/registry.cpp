// The compiled-in modules. One line per module; only this file and main.cpp's
// composition know the list.
#include "modules/carbons/carbons_module.hpp"
#include "modules/disco/disco_module.hpp"
#include "modules/mam/mam_module.hpp"
#include "modules/offline/offline_module.hpp"
#include "modules/ping/ping_module.hpp"
#include "modules/version/version_module.hpp"

namespace xmppd {

template <typename M>
ModuleDescriptor describe(std::string name) {
    return ModuleDescriptor{std::move(name), M::options(), [] { return std::make_unique<M>(); }};
}

const std::vector<ModuleDescriptor>& moduleRegistry() {
    static const std::vector<ModuleDescriptor> registry{
        describe<modules::CarbonsModule>("carbons"),
        describe<modules::DiscoModule>("disco"),
        describe<modules::MamModule>("mam"),
        describe<modules::OfflineModule>("offline"),
        describe<modules::PingModule>("ping"),
        describe<modules::VersionModule>("version"),
    };
    return registry;
}

}  // namespace xmppd
