/* sha256_hex, apart from the other file helpers: a whole document in
 * memory, hashed with libmd (common/lazylib/lazylib.h says why not
 * libcrypto, which hashes what streams). */
#include "common/common.h"
#include "common/lazylib/lazylib.h"

void sha256_hex(const void *data, size_t len, char out[65])
{
	_Static_assert(SHA256_DIGEST_STRING_LENGTH == 65, "64 digits and a nul");
	SHA256Data(data, len, out);
}
