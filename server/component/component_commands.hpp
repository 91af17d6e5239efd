#pragma once

namespace xmppd {

class ModuleHost;
class Router;

// xmppctl list_components and disconnect_component DOMAIN.
void registerComponentCommands(ModuleHost& host, Router& router);

}  // namespace xmppd
