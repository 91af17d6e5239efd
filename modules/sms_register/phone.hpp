#pragma once

#include <string>
#include <string_view>
#include <variant>

namespace xmppd::sms {

struct PhoneNumber {
    std::string e164;    // "+4915112345678"
    std::string region;  // ISO 3166-1 alpha-2 of the number, "DE"
};

// Parses what a user typed ("+49 151 1234 5678") with libphonenumber and
// normalises it to E.164. Only numbers in international form are taken (the
// server cannot guess a user's country); an error names the problem.
std::variant<PhoneNumber, std::string> parsePhone(std::string_view input);

}  // namespace xmppd::sms
