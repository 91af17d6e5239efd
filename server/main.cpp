// xmppd: the composition root.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "server/config.hpp"
#include "server/server.hpp"

int main(int argc, char** argv) {
    CLI::App app{"xmppd - an XMPP server"};
    std::string configPath = "conf/xmppd.yml";
    bool checkOnly = false;
    app.add_option("-c,--config", configPath, "configuration file")->capture_default_str();
    app.add_flag("--check-config", checkOnly, "validate the configuration and exit");
    CLI11_PARSE(app, argc, argv);

    auto logger = spdlog::stderr_color_mt("xmppd");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

    xmppd::Config config;
    try {
        config = xmppd::loadConfig(configPath, xmppd::moduleSchemas());
    } catch (const xmppd::ConfigError& e) {
        std::cerr << "xmppd: configuration error: " << e.what() << "\n";
        return 2;
    }
    if (checkOnly) {
        std::cout << configPath << ": OK\n";
        return 0;
    }
    if (!config.logFile.empty()) {
        try {
            xmppd::reopenLogFile(config.logFile);
        } catch (const std::exception& e) {
            std::cerr << "xmppd: log_file " << config.logFile << ": " << e.what() << "\n";
            return 2;
        }
    }
    spdlog::set_level(spdlog::level::from_str(config.logLevel));
    spdlog::flush_on(spdlog::level::info);
    try {
        xmppd::Server server(std::move(config));
        server.start();
        server.run();
    } catch (const std::exception& e) {
        spdlog::critical("cannot start: {}", e.what());
        return 1;
    }
    return 0;
}
