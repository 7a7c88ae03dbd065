/* sha256_hex, apart from the other file helpers.  libcrypto is opened at
 * the first hash (common/lazylib/lazylib.h), so that a program that seldom hashes
 * does not load it at start-up.
 *
 * The low-level SHA256_* calls (deprecated in OpenSSL 3, not removed) hash
 * without the EVP layer: its first use loads OpenSSL's provider machinery,
 * some 2 MiB that a long-running process hashing a few names would then
 * keep resident. */
#include "common/common.h"
#include "common/lazylib/lazylib.h"

void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, data, len);
	SHA256_Final(md, &c);
	for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}
