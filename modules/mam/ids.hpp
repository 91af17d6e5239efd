#pragma once

// Archive ids and timestamps for the message archive.
//
// An archive id (XEP-0313 §5.2, the XEP-0359 stanza-id) is a positive 63-bit
// integer: the upper 42 bits are milliseconds since the Unix epoch (enough
// until 2109), the lower 21 bits a sequence. One generator per process hands
// out strictly increasing ids: the next id is the larger of "now, plus a
// random offset within the millisecond" and "the last id plus a random step
// of 1 to 256". So ids sort in arrival order, which is the archive's
// chronological order (XEP-0313 §3.1), even when the clock steps back; they
// are hard to guess exactly (the XEP asks for unpredictable ids); and two
// servers sharing one database rarely pick the same id for one user (the
// writer retries a batch message by message if they do).
//
// The stored timestamp of a message is its id's millisecond part, so a
// time filter (start/end) is an id range and the ordering by id and by time
// can never disagree.
//
// On the wire an id is 16 lower-case hexadecimal digits: fixed width, so the
// text sorts like the number; clients treat it as opaque anyway.

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace xmppd::mam {

inline constexpr int kSequenceBits = 21;
// The last millisecond an id can express.
inline constexpr int64_t kMaxIdMillis = INT64_MAX >> kSequenceBits;

class IdGenerator {
  public:
    IdGenerator();
    explicit IdGenerator(uint64_t seed) : random_(seed) {}
    // Thread-safe. nowMs: milliseconds since the Unix epoch.
    int64_t next(int64_t nowMs);

  private:
    std::mutex mutex_;
    std::mt19937_64 random_;
    int64_t last_ = 0;
};

inline int64_t idMillis(int64_t id) {
    return id >> kSequenceBits;
}
// The smallest id of millisecond ms (clamped to the representable range).
int64_t firstIdOfMillis(int64_t ms);

std::string renderId(int64_t id);
// nullopt for anything renderId() cannot have produced.
std::optional<int64_t> parseId(std::string_view text);

int64_t nowMillis();
// XEP-0082 DateTime in UTC with milliseconds: 2024-01-02T03:04:05.678Z.
std::string formatStamp(int64_t ms);
// XEP-0082 DateTime (CCYY-MM-DDThh:mm:ss[.sss]TZD, TZD 'Z' or +/-hh:mm) to
// microseconds since the Unix epoch; nullopt when malformed.
std::optional<int64_t> parseStampMicros(std::string_view text);

}  // namespace xmppd::mam
