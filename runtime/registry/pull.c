/* Pulling an image from a registry into the store.
 *
 * The manifest (or image index, then the host platform's manifest) and
 * the config are fetched into memory within size limits and checked
 * against their digests.  Each layer is then streamed: a thread runs the
 * HTTP transfer into one end of a socket pair while the layer's own
 * thread reads the other end through the same decompress-hash-extract
 * pipeline as `image load` (layer_store_fd), so nothing compressed is
 * kept and the layer is renamed into the store only when its blob digest
 * and diff_id both match.  Layers run in parallel, at most ORCH_PULL_JOBS
 * (4) at once in the process; a lock per blob makes a second puller of
 * the same layer (another image of the stack, another process) wait and
 * then find it stored.  The image is recorded last. */
#include "runtime/registry/registry_impl.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <time.h>

#define MANIFEST_ACCEPT                                                        \
	MT_OCI_INDEX ", " MT_DOCKER_LIST ", " MT_OCI_MANIFEST                  \
		     ", " MT_DOCKER_MANIFEST

struct pull {
	const struct rt_pull_opts *o;
	struct image_ref ref;
	char *name; /* familiar[:tag][@digest], for messages */
	struct reg_client *c;
	char top_digest[136];
	char *config;
	size_t config_len;
	atomic_bool failed; /* a layer failed: the others stop */
};

static void pulled_mark(const char *ref);

/* ---- small helpers ----------------------------------------------------- */

static void digest_of(const void *data, size_t len, char out[72])
{
	char hex[65];
	sha256_hex(data, len, hex);
	snprintf(out, 72, "sha256:%s", hex);
}

static void progress(struct pull *p, const char *layer, const char *status,
		     int64_t done, int64_t total)
{
	if (p->o && p->o->progress)
		p->o->progress(p->o->progress_ctx, p->name, layer, status, done,
			       total);
}

static const char *json_get_str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- manifests --------------------------------------------------------- */

static bool is_index(const char *mt, json_t *j)
{
	return (mt && (streq(mt, MT_OCI_INDEX) || streq(mt, MT_DOCKER_LIST))) ||
	       json_is_array(json_object_get(j, "manifests"));
}

/* GETs manifests/<reference>, checks its digest against want (when
 * given), parses it; *mt receives its media type. */
static int fetch_manifest(struct pull *p, const char *reference,
			  const char *want, json_t **out, char **mt,
			  char digest[72], struct orch_err *e)
{
	_cleanup_free_ char *url = xasprintf("manifests/%s", reference);
	struct reg_req rq = {.url = url,
			     .accept = MANIFEST_ACCEPT,
			     .limit = REG_MANIFEST_MAX,
			     .what = p->name};
	struct reg_resp resp;
	int r = reg_do(p->c, &rq, &resp, e);
	if (r < 0)
		return r;
	if (resp.status != 200) {
		r = reg_fail(p->c, &resp, p->name, e);
		reg_resp_clear(&resp);
		return r;
	}
	digest_of(resp.body, resp.len, digest);
	if (want && !streq(want, digest)) {
		reg_resp_clear(&resp);
		return err_set(e, EBADMSG,
			       "%s: manifest digest mismatch: expected %s, "
			       "got %s",
			       p->name, want, digest);
	}
	json_error_t je;
	json_t *j = json_loadb(resp.body, resp.len, 0, &je);
	char *ctype = resp.content_type ? xstrdup(resp.content_type) : NULL;
	reg_resp_clear(&resp);
	if (!json_is_object(j)) {
		json_decref(j);
		free(ctype);
		return err_set(e, EPROTO, "%s: the manifest is not JSON: %s",
			       p->name, je.text);
	}
	if (ctype)
		ctype[strcspn(ctype, "; ")] = '\0';
	const char *field = json_get_str(j, "mediaType");
	if (field && *field) {
		free(ctype);
		ctype = xstrdup(field);
	}
	if (json_integer_value(json_object_get(j, "schemaVersion")) == 1 ||
	    (ctype && startswith(ctype, MT_DOCKER_V1))) {
		json_decref(j);
		free(ctype);
		return err_set(e, ENOTSUP,
			       "%s: this is a Docker schema 1 manifest, which "
			       "orch does not support; push the image again "
			       "with a current client",
			       p->name);
	}
	*out = j;
	*mt = ctype;
	return 0;
}

/* Resolves the reference to one image manifest. */
static int resolve_manifest(struct pull *p, json_t **manifest,
			    struct orch_err *e)
{
	const char *reference = p->ref.digest ? p->ref.digest : p->ref.tag;
	json_t *j = NULL;
	_cleanup_free_ char *mt = NULL;
	char digest[72] = "";
	int r = fetch_manifest(p, reference, p->ref.digest, &j, &mt, digest, e);
	if (r < 0)
		return r;
	snprintf(p->top_digest, sizeof(p->top_digest), "%s", digest);
	if (is_index(mt, j)) {
		const char *plat =
		    p->o && p->o->platform ? p->o->platform : host_platform();
		_cleanup_free_ char *have = NULL;
		json_t *d = index_pick_platform(json_object_get(j, "manifests"),
						plat, &have);
		const char *want = json_get_str(d, "digest");
		if (!d || !want || !digest_valid(want)) {
			r = err_set(e, ENOENT,
				    "%s: no image for platform %s in its "
				    "index (it has: %s)",
				    p->name, plat, *have ? have : "none");
			json_decref(j);
			return r;
		}
		_cleanup_free_ char *w = xstrdup(want);
		json_decref(j);
		free(mt);
		mt = NULL;
		r = fetch_manifest(p, w, w, &j, &mt, digest, e);
		if (r < 0)
			return r;
		if (is_index(mt, j)) {
			json_decref(j);
			return err_set(e, EPROTO,
				       "%s: an index inside an index is not "
				       "supported",
				       p->name);
		}
	}
	if (mt && !streq(mt, MT_DOCKER_MANIFEST) &&
	    !streq(mt, MT_OCI_MANIFEST)) {
		r = err_set(e, ENOTSUP, "%s: unsupported media type %s",
			    p->name, mt);
		json_decref(j);
		return r;
	}
	*manifest = j;
	return 0;
}

static int fetch_config(struct pull *p, json_t *desc, struct orch_err *e)
{
	const char *mt = json_get_str(desc, "mediaType");
	const char *dg = json_get_str(desc, "digest");
	if (mt && !streq(mt, MT_DOCKER_CONFIG) && !streq(mt, MT_OCI_CONFIG))
		return err_set(e, ENOTSUP,
			       "%s: unsupported media type %s: not a "
			       "container image",
			       p->name, mt);
	if (!dg || !digest_valid(dg))
		return err_set(e, EPROTO,
			       "%s: the manifest has no config digest",
			       p->name);
	_cleanup_free_ char *url = xasprintf("blobs/%s", dg);
	_cleanup_free_ char *what = xasprintf("%s: config %s", p->name, dg);
	struct reg_req rq = {.url = url, .limit = REG_CONFIG_MAX, .what = what};
	struct reg_resp resp;
	int r = reg_do(p->c, &rq, &resp, e);
	if (r < 0)
		return r;
	if (resp.status != 200) {
		r = reg_fail(p->c, &resp, what, e);
		reg_resp_clear(&resp);
		return r;
	}
	char got[72];
	digest_of(resp.body, resp.len, got);
	if (!streq(got, dg)) {
		reg_resp_clear(&resp);
		return err_set(
		    e, EBADMSG,
		    "%s: config digest mismatch: expected %s, got %s", p->name,
		    dg, got);
	}
	p->config = move_ptr(resp.body);
	p->config_len = resp.len;
	reg_resp_clear(&resp);
	return 0;
}

static bool layer_type_known(const char *mt)
{
	static const char *known[] = {
	    MT_DOCKER_LAYER,	     MT_DOCKER_FOREIGN,	      MT_OCI_LAYER,
	    MT_OCI_LAYER "+gzip",    MT_OCI_LAYER "+zstd",    MT_OCI_LAYER_ND,
	    MT_OCI_LAYER_ND "+gzip", MT_OCI_LAYER_ND "+zstd",
	};
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (streq(mt, known[i]))
			return true;
	return false;
}

/* ---- layers ------------------------------------------------------------ */

struct layer_job {
	struct pull *p;
	const char *blob, *diff_id;
	const char *foreign_type; /* a foreign layer's media type */
	json_t *urls;		  /* where a foreign layer may be found */
	int64_t size;
	pthread_t thread;
	int rc;
	struct orch_err err;
	/* the transfer's side */
	int sink;
	int xrc;
	struct orch_err xerr;
	int64_t last_report;
};

static int on_layer_progress(void *ctx, int64_t done)
{
	struct layer_job *j = ctx;
	if (atomic_load(&j->p->failed))
		return 1;
	if (done - j->last_report >= (1 << 20) || done == j->size) {
		j->last_report = done;
		progress(j->p, j->blob, "Downloading", done, j->size);
	}
	return 0;
}

/* As docker: a foreign layer is fetched from the URLs its descriptor
 * gives (without the registry's credentials), the registry being the
 * last resort.  A URL that does not answer 200 is passed over; one that
 * breaks off mid-way fails the layer (the bytes are already read). */
static void *layer_transfer(void *arg)
{
	struct layer_job *j = arg;
	_cleanup_free_ char *what =
	    xasprintf("%s: layer %s", j->p->name, j->blob);
	size_t n_urls = j->foreign_type ? json_array_size(j->urls) : 0;
	for (size_t i = 0; i <= n_urls; i++) {
		const char *foreign =
		    i < n_urls ? json_string_value(json_array_get(j->urls, i))
			       : NULL;
		if (i < n_urls && (!foreign || (!startswith(foreign, "http://") &&
						!startswith(foreign,
							    "https://"))))
			continue;
		_cleanup_free_ char *url =
		    foreign ? xstrdup(foreign) : xasprintf("blobs/%s", j->blob);
		struct reg_req rq = {.url = url,
				     .anonymous = foreign != NULL,
				     .to_sink = true,
				     .sink_fd = j->sink,
				     .sink_size = j->size > 0 ? j->size : -1,
				     .progress = on_layer_progress,
				     .progress_ctx = j,
				     .what = what};
		struct reg_resp resp;
		struct orch_err fe = {0};
		j->xrc = reg_do(j->p->c, &rq, &resp, foreign ? &fe : &j->xerr);
		bool ok = j->xrc == 0 &&
			  (resp.status == 200 || resp.status == 206);
		if (foreign && !ok && j->xrc == 0) {
			log_info("%s: %s answered HTTP %ld; trying the next",
				 what, foreign, resp.status);
			reg_resp_clear(&resp);
			continue;
		}
		if (foreign && j->xrc < 0 && fe.code != EPIPE && fe.code != EFBIG) {
			log_info("%s: %s: %s; trying the next", what, foreign,
				 fe.msg);
			reg_resp_clear(&resp);
			continue;
		}
		if (foreign && j->xrc < 0)
			j->xerr = fe;
		if (j->xrc == 0 && !ok)
			j->xrc = reg_fail(j->p->c, &resp, what, &j->xerr);
		reg_resp_clear(&resp);
		break;
	}
	close(j->sink);
	return NULL;
}

/* Streams the layer into the store (the caller holds its lock). */
static int layer_fetch(struct layer_job *j, struct orch_err *e)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return err_sys(e, errno, "creating a socket pair");
	j->sink = sv[1];
	pthread_t t;
	int r = pthread_create(&t, NULL, layer_transfer, j);
	if (r != 0) {
		close(sv[0]);
		close(sv[1]);
		return err_sys(e, r, "starting a download thread");
	}
	_cleanup_free_ char *what =
	    xasprintf("%s: layer %s", j->p->name, j->blob);
	struct layer_expect want = {.diff_id = j->diff_id,
				    .blob_digest = j->blob,
				    .foreign_type = j->foreign_type,
				    .foreign_urls = j->urls};
	r = layer_store_fd(sv[0], what, &want, NULL, e);
	pthread_join(t, NULL);
	if (j->xrc < 0) {
		*e = j->xerr;
		return j->xrc;
	}
	return r;
}

static int layer_lock(const char *blob, struct orch_err *e, char **path)
{
	_cleanup_free_ char *dir = path_join(orch_root(), "tmp");
	int r = mkdir_p(dir, 0700, e);
	if (r < 0)
		return r;
	const char *hex = strchr(blob, ':') ? strchr(blob, ':') + 1 : blob;
	*path = xasprintf("%s/pull-%s.lock", dir, hex);
	int fd = open(*path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", *path);
	if (RETRY_EINTR(flock(fd, LOCK_EX)) < 0) {
		r = err_sys(e, errno, "locking %s", *path);
		close(fd);
		return r;
	}
	return fd;
}

static void *layer_job_run(void *arg)
{
	struct layer_job *j = arg;
	_cleanup_free_ char *lockpath = NULL;
	int lock = layer_lock(j->blob, &j->err, &lockpath);
	if (lock < 0) {
		j->rc = lock;
		atomic_store(&j->p->failed, true);
		return NULL;
	}
	if (layer_exists(j->diff_id)) {
		progress(j->p, j->blob, "Already exists", -1, -1);
	} else if (atomic_load(&j->p->failed)) {
		j->rc = -ECANCELED;
	} else {
		reg_slot_take();
		progress(j->p, j->blob, "Downloading", 0, j->size);
		j->rc = layer_fetch(j, &j->err);
		reg_slot_give();
		if (j->rc == 0)
			progress(j->p, j->blob, "Pull complete", j->size,
				 j->size);
		else
			atomic_store(&j->p->failed, true);
	}
	/* Waiters hold the old file; newcomers find the layer stored. */
	unlink(lockpath);
	close(lock);
	return NULL;
}

/* Fetches every layer of the manifest that the store lacks. */
static int pull_layers(struct pull *p, json_t *layers, json_t *diff_ids,
		       struct orch_err *e)
{
	size_t n = json_array_size(layers);
	struct layer_job *jobs = xcalloc(n ? n : 1, sizeof(*jobs));
	int r = 0;
	size_t started = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_array_get(layers, i);
		struct layer_job *j = &jobs[i];
		j->p = p;
		j->blob = json_get_str(d, "digest");
		j->diff_id = json_string_value(json_array_get(diff_ids, i));
		j->size = json_integer_value(json_object_get(d, "size"));
		const char *mt = json_get_str(d, "mediaType");
		if (mt && (streq(mt, MT_DOCKER_FOREIGN) ||
			   startswith(mt, MT_OCI_LAYER_ND))) {
			j->foreign_type = mt;
			j->urls = json_object_get(d, "urls");
		}
		progress(p, j->blob, "Waiting", -1, -1);
		int pr = pthread_create(&j->thread, NULL, layer_job_run, j);
		if (pr != 0) {
			r = err_sys(e, pr, "starting a layer thread");
			atomic_store(&p->failed, true);
			break;
		}
		started++;
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(jobs[i].thread, NULL);
	/* The first real failure, not a layer stopped because of it. */
	for (size_t i = 0; i < started && r == 0; i++)
		if (jobs[i].rc < 0 && jobs[i].rc != -ECANCELED) {
			*e = jobs[i].err;
			r = jobs[i].rc;
		}
	for (size_t i = 0; i < started && r == 0; i++)
		if (jobs[i].rc < 0) {
			*e = jobs[i].err;
			r = jobs[i].rc;
		}
	free(jobs);
	return r;
}

/* Checks the manifest's layers against the config's diff_ids. */
static int check_layers(struct pull *p, json_t *layers, json_t *diff_ids,
			struct orch_err *e)
{
	if (!json_is_array(layers) || !json_is_array(diff_ids) ||
	    json_array_size(layers) != json_array_size(diff_ids))
		return err_set(e, EPROTO,
			       "%s: the manifest has %zu layers but the config "
			       "%zu diff_ids",
			       p->name, json_array_size(layers),
			       json_array_size(diff_ids));
	size_t i;
	json_t *d;
	json_array_foreach(layers, i, d)
	{
		const char *mt = json_get_str(d, "mediaType");
		const char *dg = json_get_str(d, "digest");
		const char *di = json_string_value(json_array_get(diff_ids, i));
		if (mt && !layer_type_known(mt))
			return err_set(e, ENOTSUP,
				       "%s: layer %zu has an unsupported "
				       "media type %s",
				       p->name, i + 1, mt);
		if (!dg || !digest_valid(dg) || !di || !digest_valid(di) ||
		    !startswith(dg, "sha256:") || !startswith(di, "sha256:"))
			return err_set(
			    e, EPROTO,
			    "%s: layer %zu has no valid sha256 digest", p->name,
			    i + 1);
		if (json_integer_value(json_object_get(d, "size")) < 0)
			return err_set(e, EPROTO,
				       "%s: layer %zu has a negative size",
				       p->name, i + 1);
	}
	return 0;
}

/* The config's platform must be the one asked for explicitly. */
static int check_platform(struct pull *p, json_t *cfg, struct orch_err *e)
{
	if (!p->o || !p->o->platform)
		return 0;
	const char *os = json_get_str(cfg, "os");
	const char *arch = json_get_str(cfg, "architecture");
	_cleanup_free_ char *want = xstrdup(p->o->platform);
	char *slash = strchr(want, '/');
	if (slash) {
		char *v = strchr(slash + 1, '/');
		if (v)
			*v = '\0';
	}
	_cleanup_free_ char *have =
	    xasprintf("%s/%s", os ? os : "?", arch ? arch : "?");
	if (!streq(have, want))
		return err_set(e, ENOENT, "%s: the image is for %s, not for %s",
			       p->name, have, p->o->platform);
	return 0;
}

static int pull_record(struct pull *p, struct rt_pull_result *res,
		       struct orch_err *e)
{
	_cleanup_free_ char *fam = image_ref_familiar(&p->ref);
	_cleanup_strv_ char **refs = xcalloc(1, sizeof(char *));
	_cleanup_free_ char *tagged = p->ref.tag && !p->ref.digest
					  ? xasprintf("%s:%s", fam, p->ref.tag)
					  : NULL;
	_cleanup_free_ char *by_digest = xasprintf("%s@%s", fam, p->top_digest);
	if (tagged)
		strv_push(&refs, tagged);
	strv_push(&refs, by_digest);
	struct rt_image *old = NULL;
	char new_id[65];
	sha256_hex(p->config, p->config_len, new_id);
	res->updated = !(rt_image_lookup(by_digest, &old, NULL) == 0 &&
			 streq(old->id, new_id) &&
			 (!tagged || strv_contains(old->names, tagged)));
	rt_image_free(old);
	snprintf(res->digest, sizeof(res->digest), "%s", p->top_digest);
	return image_store_config(p->config, p->config_len, refs, res->id, e);
}

/* Pulls from one endpoint (a mirror, or the registry). */
static int pull_from(struct pull *p, const struct reg_endpoint *ep,
		     struct rt_pull_result *res, struct orch_err *e)
{
	reg_close(p->c);
	p->c = NULL;
	int r = reg_open(ep->domain, ep->path, "pull", NULL, NULL, &p->c, e);
	if (r < 0)
		return r;
	json_t *m = NULL;
	r = resolve_manifest(p, &m, e);
	if (r < 0)
		return r;
	r = fetch_config(p, json_object_get(m, "config"), e);
	json_t *cfg = NULL;
	if (r == 0) {
		json_error_t je;
		cfg = json_loadb(p->config, p->config_len, 0, &je);
		if (!json_is_object(cfg))
			r = err_set(e, EPROTO, "%s: the config is not JSON: %s",
				    p->name, je.text);
	}
	json_t *layers = json_object_get(m, "layers");
	json_t *diff_ids =
	    json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (r == 0)
		r = check_platform(p, cfg, e);
	if (r == 0)
		r = check_layers(p, layers, diff_ids, e);
	if (r == 0) {
		/* Image removal must not take a layer this pull found. */
		_cleanup_close_ int lock =
		    store_lock(STORE_LAYERS_LOCK, LOCK_SH, e);
		r = lock < 0 ? lock : pull_layers(p, layers, diff_ids, e);
		if (r == 0)
			r = pull_record(p, res, e);
	}
	json_decref(cfg);
	json_decref(m);
	return r;
}

/* The mirrors first, then the registry: a mirror that fails (down, or
 * without the image) is passed over, and the registry's own answer is
 * the one reported. */
static int pull_run(struct pull *p, struct rt_pull_result *res,
		    struct orch_err *e)
{
	struct reg_endpoints eps;
	int r = registry_endpoints(p->ref.domain, p->ref.path, &eps, e);
	for (size_t i = 0; r == 0 && i < eps.n; i++) {
		struct orch_err me = {0};
		r = pull_from(p, &eps.v[i], res, eps.v[i].mirror ? &me : e);
		if (r < 0 && eps.v[i].mirror) {
			log_info("%s: mirror %s: %s; trying the next", p->name,
				 eps.v[i].domain, me.msg);
			r = 0;
			continue;
		}
		break;
	}
	registry_endpoints_clear(&eps);
	return r;
}

int rt_image_pull(const char *ref, const struct rt_pull_opts *o,
		  struct rt_pull_result *res, struct orch_err *e)
{
	struct pull p = {.o = o};
	memset(res, 0, sizeof(*res));
	int r = image_ref_parse(ref, &p.ref, e);
	if (r < 0)
		return r;
	p.name = image_ref_string(&p.ref);
	r = pull_run(&p, res, e);
	if (r == 0)
		pulled_mark(ref);
	reg_close(p.c);
	free(p.config);
	free(p.name);
	image_ref_clear(&p.ref);
	return r;
}

/* ---- when a reference was pulled --------------------------------------- */

static char *pulled_marker(const char *ref)
{
	_cleanup_free_ char *key = NULL;
	if (image_ref_normalize(ref, &key, NULL) < 0)
		return NULL;
	char hex[65];
	sha256_hex(key, strlen(key), hex);
	return xasprintf("%s/images/pulled/%s", orch_root(), hex);
}

static void pulled_mark(const char *ref)
{
	_cleanup_free_ char *p = pulled_marker(ref);
	_cleanup_free_ char *dir = path_join(orch_root(), "images/pulled");
	if (!p || mkdir_p(dir, 0700, NULL) < 0)
		return;
	_cleanup_free_ char *now = xasprintf("%lld\n", (long long)time(NULL));
	write_file_atomic(p, now, strlen(now), 0600, NULL);
}

int64_t rt_image_pulled_at(const char *ref)
{
	_cleanup_free_ char *p = pulled_marker(ref);
	_cleanup_free_ char *s = NULL;
	if (!p || read_file(p, &s, NULL, NULL) < 0)
		return 0;
	return strtoll(s, NULL, 10);
}
