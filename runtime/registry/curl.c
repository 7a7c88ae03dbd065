/* libcurl, opened when the registry client first talks to a registry.
 * Linked in, it and what it needs (TLS libraries, Kerberos, LDAP, IDN,
 * HTTP/2...) cost every orch process about 9 ms to load and start, and
 * most commands (up with every image present, ps, down, logs) never send
 * a request. */
#include "runtime/registry/registry_impl.h"

#include <dlfcn.h>

struct curl_fns reg_curl;
static bool loaded;
static char load_error[512];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

#define SYM(field, name) {(void **)&reg_curl.field, name}

static void load(void)
{
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(load_error, sizeof(load_error), "%s", dlerror());
		return;
	}
	const struct {
		void **slot;
		const char *name;
	} syms[] = {
	    SYM(global_init, "curl_global_init"),
	    SYM(easy_init, "curl_easy_init"),
	    SYM(easy_cleanup, "curl_easy_cleanup"),
	    SYM(easy_reset, "curl_easy_reset"),
	    SYM(easy_setopt, "curl_easy_setopt"),
	    SYM(easy_getinfo, "curl_easy_getinfo"),
	    SYM(easy_perform, "curl_easy_perform"),
	    SYM(easy_strerror, "curl_easy_strerror"),
	    SYM(easy_escape, "curl_easy_escape"),
	    SYM(free, "curl_free"),
	    SYM(slist_append, "curl_slist_append"),
	    SYM(slist_free_all, "curl_slist_free_all"),
	};
	for (size_t i = 0; i < ARRAY_SIZE(syms); i++) {
		*syms[i].slot = dlsym(lib, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(load_error, sizeof(load_error),
				 "libcurl.so.4 has no %s", syms[i].name);
			return;
		}
	}
	reg_curl.global_init(CURL_GLOBAL_DEFAULT);
	loaded = true;
}

void curl_defaults(CURL *h)
{
	reg_curl.easy_setopt(h, CURLOPT_USERAGENT, "orch");
	reg_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	reg_curl.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	reg_curl.easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
	reg_curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	reg_curl.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	reg_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	reg_curl.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	reg_curl.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
}

int curl_load(struct orch_err *e)
{
	pthread_once(&load_once, load);
	if (!loaded)
		return err_set(e, ELIBACC,
			       "loading libcurl (package libcurl4) to talk to "
			       "registries: %s",
			       load_error);
	return 0;
}
