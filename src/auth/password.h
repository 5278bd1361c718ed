#pragma once
#include <string>
#include <string_view>

namespace parley::auth {

// Argon2id (libsodium crypto_pwhash_str) with t=2, m=19 MiB. Slow by design (~tens of ms):
// call off the IO threads.
std::string hash_password(std::string_view password);
bool verify_password(std::string_view hash, std::string_view password);
// A hash of a random password, verified against when the user does not exist so that a
// login for an unknown user costs the same time as a wrong password.
const std::string& dummy_password_hash();

}  // namespace parley::auth
