#include "modules/sms_register/phone.hpp"

#include <phonenumbers/phonenumberutil.h>

namespace xmppd::sms {

using i18n::phonenumbers::PhoneNumberUtil;

std::variant<PhoneNumber, std::string> parsePhone(std::string_view input) {
    if (input.empty()) {
        return std::string("the phone number is empty");
    }
    if (input.size() > 64) {
        return std::string("the phone number is too long");
    }
    if (input.front() != '+') {
        return std::string(
            "the phone number must be in international form, starting with + and the country code");
    }
    const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
    i18n::phonenumbers::PhoneNumber number;
    switch (util.Parse(std::string(input), "ZZ", &number)) {
        case PhoneNumberUtil::NO_PARSING_ERROR:
            break;
        case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
            return std::string("unknown country calling code");
        case PhoneNumberUtil::TOO_SHORT_NSN:
        case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
            return std::string("the phone number is too short");
        case PhoneNumberUtil::TOO_LONG_NSN:
            return std::string("the phone number is too long");
        default:
            return std::string("not a phone number");
    }
    if (!util.IsValidNumber(number)) {
        return std::string("not a valid phone number for its country");
    }
    PhoneNumber out;
    util.Format(number, PhoneNumberUtil::E164, &out.e164);
    util.GetRegionCodeForNumber(number, &out.region);
    return out;
}

}  // namespace xmppd::sms
