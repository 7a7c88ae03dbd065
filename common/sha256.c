/* sha256_hex, apart from the other file helpers, with libcrypto loaded at
 * its first call rather than linked: a program that seldom hashes
 * (orch-runtime, orch-supervisor, which hash only for keep-id's layer
 * copies) then neither maps libcrypto nor pays at start-up for relocating
 * it, some 600 KiB of private pages per process.  A program that links
 * libcrypto anyway (orch, netd through ldns) gets the copy it has.
 *
 * The low-level SHA256_* calls (deprecated in OpenSSL 3, not removed) hash
 * without the EVP layer: its first use loads OpenSSL's provider machinery,
 * some 2 MiB that a long-running daemon hashing a few names (netd) would
 * then keep resident. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "common/common.h"

#include <dlfcn.h>
#include <openssl/sha.h>
#include <pthread.h>

static struct {
	__typeof__(SHA256_Init) *init;
	__typeof__(SHA256_Update) *update;
	__typeof__(SHA256_Final) *final;
} sha;

static void sha_load(void)
{
	void *lib = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	if (lib) {
		sha.init = (__typeof__(sha.init))dlsym(lib, "SHA256_Init");
		sha.update = (__typeof__(sha.update))dlsym(lib, "SHA256_Update");
		sha.final = (__typeof__(sha.final))dlsym(lib, "SHA256_Final");
	}
	if (!sha.init || !sha.update || !sha.final) {
		/* libcrypto is a dependency of the package: never here on an
		 * installed system, and no hash can be made up. */
		log_error("loading SHA-256 from libcrypto.so.3: %s", dlerror());
		abort();
	}
}

void sha256_hex(const void *data, size_t len, char out[65])
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, sha_load);
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_CTX c;
	sha.init(&c);
	sha.update(&c, data, len);
	sha.final(md, &c);
	for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}
