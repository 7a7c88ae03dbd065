/* The registry client: pulls images from, and pushes them to, registries
 * of the OCI distribution spec (docker.io, local registries, mirrors),
 * with docker's credentials and registries configuration.  This is the
 * registry client's one public header. */
#ifndef ORCH_RUNTIME_REGISTRY_H
#define ORCH_RUNTIME_REGISTRY_H

#include "runtime/store/store.h"

/* ---- registries (pull.c, regauth.c) ---------------------------- */

/* What a pull tells as it goes: per layer (layer = its digest),
 * a status ("Waiting", "Downloading", "Pull complete", "Already exists",
 * "Pushed", ...) with bytes done/total when known (else -1). */
typedef void (*rt_progress_fn)(void *ctx, const char *ref, const char *layer,
			       const char *status, int64_t done,
			       int64_t total);

struct rt_pull_opts {
	const char *platform; /* "os/arch[/variant]"; NULL: the host's */
	rt_progress_fn progress;
	void *progress_ctx;
};

struct rt_pull_result {
	char id[65];	  /* the image id */
	char digest[136]; /* "sha256:..." of the manifest (or index) */
	bool updated;	  /* false: the image was already in the store */
};

/* Pulls ref from its registry into the store: manifest (or index, then
 * the platform's manifest), config and layers verified against their
 * digests; layers streamed, fetched in parallel (ORCH_PULL_JOBS, 4) and
 * never twice, even by concurrent pulls.  The image is recorded (as
 * name:tag and name@digest) only once everything is verified. */
int rt_image_pull(const char *ref, const struct rt_pull_opts *o,
		  struct rt_pull_result *res, struct orch_err *e);
struct rt_push_opts {
	rt_progress_fn progress; /* per layer: "Preparing", "Pushing",
				    "Pushed", "Layer already exists",
				    "Mounted from REPO" */
	void *progress_ctx;
};

struct rt_push_result {
	char digest[136]; /* "sha256:..." of the manifest pushed */
	int64_t size;	  /* of the manifest */
};

/* Pushes the store's image ref (name:tag, its registry from the name)
 * to its registry: layers as they were stored (gzip when they came
 * uncompressed), skipping blobs the registry has, the config, then the
 * manifest under the tag.  The image is then also known as
 * name@digest. */
int rt_image_push(const char *ref, const struct rt_push_opts *o,
		  struct rt_push_result *res, struct orch_err *e);
/* When ref was last pulled (unix seconds), 0 when never. */
int64_t rt_image_pulled_at(const char *ref);
/* Checks user/pass with registry (NULL: docker.io) and stores them in the
 * docker config file; logout removes them (1 when there were some). */
int rt_registry_login(const char *registry, const char *user,
		      const char *pass, struct orch_err *e);
int rt_registry_logout(const char *registry, struct orch_err *e);

/* ---- plain downloads (fetch.c) ----------------------------------------- */

struct rt_fetched {
	int64_t size;
	int64_t mtime;	 /* the server's Last-Modified, 0 when it gave none */
	char sha256[65]; /* of the bytes written */
};
/* Writes what url (http or https) holds to fd, redirects followed; an
 * answer other than 2xx is an error naming the URL and the status. */
int rt_http_fetch(const char *url, int fd, struct rt_fetched *out,
		  struct orch_err *e);
#endif
