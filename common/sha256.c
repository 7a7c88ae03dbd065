/* sha256_hex, apart from the other file helpers so that a program that
 * does not hash (orch-runtime) does not load libcrypto at start-up. */
#include "common/common.h"

#include <openssl/evp.h>

void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}
