/* Private to runtime/registry/: the OCI distribution client shared by
 * pull.c, push.c and regauth.c (regclient.c is the HTTP side, regconf.c
 * the registries configuration).  The public API is registry.h. */
#ifndef ORCH_RUNTIME_REGISTRY_IMPL_H
#define ORCH_RUNTIME_REGISTRY_IMPL_H

#include "runtime/registry/registry.h"
#include "runtime/store/store.h"

#include <curl/curl.h>
#include <pthread.h>

#define MT_DOCKER_MANIFEST                                                     \
	"application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST                                                         \
	"application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER	 "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_DOCKER_FOREIGN                                                      \
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define MT_DOCKER_V1	"application/vnd.docker.distribution.manifest.v1"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX	"application/vnd.oci.image.index.v1+json"
#define MT_OCI_CONFIG	"application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER	"application/vnd.oci.image.layer.v1.tar"
#define MT_OCI_LAYER_ND                                                        \
	"application/vnd.oci.image.layer.nondistributable.v1.tar"

/* ---- libcurl (curl.c) -------------------------------------------------- */

/* The libcurl functions the client calls, from the library opened at the
 * first request rather than linked in. */
struct curl_fns {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *h);
	void (*easy_reset)(CURL *h);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	CURLcode (*easy_perform)(CURL *h);
	const char *(*easy_strerror)(CURLcode rc);
	char *(*easy_escape)(CURL *h, const char *s, int len);
	void (*free)(void *p);
	struct curl_slist *(*slist_append)(struct curl_slist *l,
					   const char *s);
	void (*slist_free_all)(struct curl_slist *l);
};
/* Opens (and globally initializes) libcurl, once; -ELIBACC, said in e,
 * when it cannot be.  reg_curl is usable by a thread once it has had 0. */
int curl_load(struct orch_err *e);
extern struct curl_fns reg_curl;
/* What every request of orch's sets: its user agent, redirects (http and
 * https only, at most 10), no signals, and its timeouts (30 s to
 * connect, 60 s without a byte). */
void curl_defaults(CURL *h);

/* Largest manifest and config accepted (docker's limits). */
#define REG_MANIFEST_MAX (4u << 20)
#define REG_CONFIG_MAX	 (8u << 20)

/* ---- credentials (regauth.c) ------------------------------------------- */

/* The docker config file: $DOCKER_CONFIG/config.json, else
 * ~/.docker/config.json. */
char *docker_config_path(void);
/* The "auths" key docker uses for a registry domain ("docker.io" is
 * "https://index.docker.io/v1/"). */
const char *docker_auth_key(const char *domain);
/* User and password stored for domain; 0 with *user NULL when none. */
int creds_lookup(const char *domain, char **user, char **pass,
		 struct orch_err *e);
int creds_store(const char *domain, const char *user, const char *pass,
		struct orch_err *e);
/* 1 when an entry was removed, 0 when there was none. */
int creds_erase(const char *domain, struct orch_err *e);

/* ---- a session with one repository of one registry (regclient.c) ------- */

struct reg_client;

/* Opens a client for repository path on domain with the actions asked
 * ("pull" or "pull,push"): pings /v2/ to choose https or (only where
 * allowed) http and to learn how the registry authenticates.  user/pass
 * may be NULL (then the docker config is read). */
int reg_open(const char *domain, const char *path, const char *actions,
	     const char *user, const char *pass, struct reg_client **out,
	     struct orch_err *e);
void reg_close(struct reg_client *c);
const char *reg_domain(const struct reg_client *c);
/* Another scope the client's tokens should cover ("repository:R:pull",
 * to mount R's blobs). */
void reg_add_scope(struct reg_client *c, const char *scope);
/* Verifies that the registry accepts the client's credentials. */
int reg_check_login(struct reg_client *c, struct orch_err *e);

struct reg_resp {
	long status;
	char *body;
	size_t len;
	char *content_type;
	char *digest;	/* Docker-Content-Digest */
	char *location; /* Location, made absolute */
	char *range;	/* Range (uploads) */
	char *www_auth; /* WWW-Authenticate */
};
void reg_resp_clear(struct reg_resp *r);

/* A progress callback: bytes of this transfer so far.  Returning
 * non-zero aborts the transfer. */
typedef int (*reg_progress_fn)(void *ctx, int64_t done);

struct reg_req {
	const char *method; /* GET (default), HEAD, PUT, POST, PATCH */
	const char *url;    /* absolute, or relative to /v2/<repo>/ */
	bool anonymous;	    /* no credentials (a URL outside the registry) */
	const char *accept;
	const char *content_type;
	const void *body; /* uploads: from memory */
	size_t body_len;
	bool from_fd; /* or from body_fd (body_len bytes) */
	int body_fd;
	size_t limit; /* largest body kept in memory; 0: discard it */
	bool to_sink; /* a 2xx body is streamed to sink_fd */
	int sink_fd;
	int64_t sink_size; /* expected streamed bytes, -1 unknown */
	reg_progress_fn progress;
	void *progress_ctx;
	const char *what; /* names the object in messages */
};

/* Performs req with the client's credentials (asking for a token on a
 * 401), retrying 429, 5xx and broken connections with backoff; a
 * streamed body is resumed where it broke off.  Returns 0 with resp
 * filled for any HTTP status; negative only when no answer came. */
int reg_do(struct reg_client *c, const struct reg_req *req,
	   struct reg_resp *resp, struct orch_err *e);
/* An error for a failed answer: 401 names the registry and `orch login`,
 * 404 names what, others quote the registry's error message. */
int reg_fail(struct reg_client *c, const struct reg_resp *resp,
	     const char *what, struct orch_err *e);

/* A slot among the transfers the process runs at once (ORCH_PULL_JOBS,
 * 4), taken for the time of one blob's transfer. */
void reg_slot_take(void);
void reg_slot_give(void);

/* ---- configuration (regconf.c) ------------------------------------------ */

/* Whether host[:port] may be reached without TLS verification (and over
 * plain http): "insecure-registries" of $ORCH_ROOT/registries.json, or
 * insecure = true in registries.conf. */
bool registry_insecure(const char *host);

/* Where a pull of domain/path goes, in order: the mirrors configured for
 * it, then the registry itself (its location may be rewritten by
 * registries.conf). */
struct reg_endpoint {
	char *domain; /* host[:port] */
	char *path;   /* the repository there */
	bool mirror;
};
struct reg_endpoints {
	struct reg_endpoint *v;
	size_t n;
};
/* Fails when registries.conf blocks the registry. */
int registry_endpoints(const char *domain, const char *path,
		       struct reg_endpoints *out, struct orch_err *e);
void registry_endpoints_clear(struct reg_endpoints *eps);

/* ---- pure helpers (regclient.c), unit-tested --------------------------- */

struct auth_challenge {
	char *scheme; /* "bearer", "basic" (lowercase) */
	char *realm, *service, *scope;
};
/* Parses a WWW-Authenticate value: `Bearer realm="...",service="..."`. */
int auth_challenge_parse(const char *hdr, struct auth_challenge *c);
void auth_challenge_clear(struct auth_challenge *c);

/* Picks from an image index (its "manifests" array) the descriptor for
 * platform "os/arch[/variant]"; NULL when none matches, with *have
 * listing the platforms there are. */
json_t *index_pick_platform(json_t *manifests, const char *platform,
			    char **have);
/* The host's platform: "linux/amd64", "linux/arm64/v8", ... */
const char *host_platform(void);

#endif
