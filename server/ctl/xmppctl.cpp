// xmppctl: the operator's command line, talking to a running xmppd over its
// Unix control socket. The commands themselves live in the server (one
// registry); `xmppctl help` lists them.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "server/config.hpp"
#include "server/server.hpp"

namespace {

int talk(const std::string& path, const std::vector<std::string>& args) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        std::cerr << "xmppctl: control socket path too long: " << path << "\n";
        return 3;
    }
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::cerr << "xmppctl: cannot reach xmppd at " << path << ": " << std::strerror(errno)
                  << " (is the server running?)\n";
        if (fd >= 0) {
            ::close(fd);
        }
        return 3;
    }
    std::string request;
    for (const auto& a : args) {
        request += std::to_string(a.size()) + ":" + a + ",";
    }
    size_t off = 0;
    while (off < request.size()) {
        ssize_t n = ::write(fd, request.data() + off, request.size() - off);
        if (n <= 0) {
            std::cerr << "xmppctl: write failed: " << std::strerror(errno) << "\n";
            ::close(fd);
            return 3;
        }
        off += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    std::string response;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        response.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    size_t nl = response.find('\n');
    if (nl == std::string::npos) {
        std::cerr << "xmppctl: no answer from the server\n";
        return 3;
    }
    int code = std::atoi(response.substr(0, nl).c_str());
    std::string out = response.substr(nl + 1);
    (code == 0 ? std::cout : std::cerr) << out;
    return code;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "xmppctl - control a running xmppd\n\n"
        "  xmppctl [-c CONFIG | -s SOCKET] COMMAND [ARGS...]\n"
        "  xmppctl help             lists the server's commands\n"
        "  xmppctl COMMAND --help   shows one command's usage"};
    std::string configPath = "conf/xmppd.yml";
    std::string socketPath;
    std::vector<std::string> command;
    app.add_option("-c,--config", configPath, "configuration file (for the control socket path)")
        ->capture_default_str();
    app.add_option("-s,--socket", socketPath, "control socket path (overrides the configuration)");
    app.prefix_command();  // everything from the first positional on is the command
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    command = app.remaining();
    if (command.empty()) {
        std::cerr << app.help();
        return 2;
    }
    if (socketPath.empty()) {
        try {
            socketPath = xmppd::loadConfig(configPath, xmppd::moduleSchemas()).controlSocket;
        } catch (const xmppd::ConfigError& e) {
            std::cerr << "xmppctl: configuration error: " << e.what() << "\n";
            return 2;
        }
    }
    return talk(socketPath, command);
}
