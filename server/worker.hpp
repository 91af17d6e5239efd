#pragma once

#include <cstddef>
#include <functional>

namespace xmppd {

// One I/O thread with its event loop. A session lives on exactly one worker
// and its state is touched only there; anything that wants to reach it from
// another thread posts to its worker. Asio stays behind this interface so
// that sessions, the router and modules compile without it.
class Worker {
  public:
    virtual ~Worker() = default;
    virtual void post(std::function<void()> fn) = 0;
    virtual size_t index() const = 0;
    // True when called on this worker's own thread.
    virtual bool inThisThread() const = 0;
};

}  // namespace xmppd
