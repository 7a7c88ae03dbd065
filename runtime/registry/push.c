/* Pushing an image from the store to a registry.
 *
 * Every layer is sent as the archive it was stored from (layers keep it:
 * a pull's blob as the registry sent it, a build's tarball), so the
 * config's diff_ids, and with them the image id, are the same on the
 * other side.  An uncompressed archive is compressed with gzip first
 * (deterministically: no time in the header, so a second push finds
 * the same digest).  A blob the registry has is skipped (HEAD); one held
 * by another repository of the same registry that this image came from
 * is mounted from there when the registry allows it; the others are
 * uploaded in parallel (the same bound as pulls).  The config goes last
 * but one, the manifest last: a Docker v2 schema 2 manifest, or an OCI
 * one when a layer is zstd, as docker and podman write them. */
#include "runtime/registry/registry_impl.h"

#include "common/lazylib/lazylib.h"
#include <fcntl.h>
#include <stdatomic.h>

struct push {
	const struct rt_push_opts *o;
	struct image_ref ref;
	char *name; /* familiar:tag, for messages */
	struct reg_client *c;
	struct rt_image *img;
	char **mount_from; /* repositories of the same registry */
	atomic_bool failed;
};

struct push_layer {
	struct push *p;
	const char *diff_id;
	struct layer_blob blob; /* what is sent */
	char *tmp;		/* scratch directory of a compressed copy */
	int tmp_lock;
	pthread_t thread;
	int rc;
	struct orch_err err;
	int64_t last_report;
};

static void progress(struct push *p, const char *what, const char *status,
		     int64_t done, int64_t total)
{
	if (p->o && p->o->progress)
		p->o->progress(p->o->progress_ctx, p->name, what, status, done,
			       total);
}

/* ---- gzip of an uncompressed layer ------------------------------------- */

struct gz_out {
	int fd;
	EVP_MD_CTX *md;
	int64_t size;
};

static la_ssize_t gz_write(struct archive *a, void *data, const void *buf,
			   size_t n)
{
	struct gz_out *g = data;
	if (write_all(g->fd, buf, n) < 0) {
		archive_set_error(a, errno, "writing: %s", strerror(errno));
		return -1;
	}
	EVP_DigestUpdate(g->md, buf, n);
	g->size += (int64_t)n;
	return (la_ssize_t)n;
}

/* Compresses src into dst; fills out's digest and size. */
static int gzip_file(const char *src, const char *dst, struct layer_blob *out,
		     struct orch_err *e)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return err_sys(e, errno, "opening %s", src);
	struct gz_out g = {.fd = open(dst, O_WRONLY | O_CREAT | O_EXCL |
						   O_CLOEXEC,
				      0600),
			   .md = EVP_MD_CTX_new()};
	if (g.fd < 0) {
		EVP_MD_CTX_free(g.md);
		return err_sys(e, errno, "creating %s", dst);
	}
	if (!g.md)
		abort();
	EVP_DigestInit_ex(g.md, EVP_sha256(), NULL);
	struct archive *a = archive_write_new();
	if (!a)
		abort();
	archive_write_add_filter_gzip(a);
	/* No time in the gzip header: the same layer, the same digest. */
	archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
	archive_write_set_bytes_in_last_block(a, 1);
	archive_write_set_format_raw(a);
	int r = 0;
	struct archive_entry *ent = archive_entry_new();
	if (!ent)
		abort();
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_pathname(ent, "layer.tar");
	if (archive_write_open(a, &g, NULL, gz_write, NULL) != ARCHIVE_OK ||
	    archive_write_header(a, ent) != ARCHIVE_OK)
		r = err_set(e, EIO, "compressing %s: %s", src,
			    archive_error_string(a));
	char buf[65536];
	while (r == 0) {
		ssize_t n = RETRY_EINTR(read(in, buf, sizeof(buf)));
		if (n < 0)
			r = err_sys(e, errno, "reading %s", src);
		if (n <= 0)
			break;
		if (archive_write_data(a, buf, (size_t)n) != n)
			r = err_set(e, EIO, "compressing %s: %s", src,
				    archive_error_string(a));
	}
	if (archive_write_close(a) != ARCHIVE_OK && r == 0)
		r = err_set(e, EIO, "compressing %s: %s", src,
			    archive_error_string(a));
	archive_entry_free(ent);
	archive_write_free(a);
	close(g.fd);
	unsigned char md[32];
	unsigned int len;
	EVP_DigestFinal_ex(g.md, md, &len);
	EVP_MD_CTX_free(g.md);
	if (r < 0)
		return r;
	strcpy(out->digest, "sha256:");
	hex32(md, out->digest + 7);
	snprintf(out->compression, sizeof(out->compression), "gzip");
	out->size = g.size;
	free(out->path);
	out->path = xstrdup(dst);
	return 0;
}

/* ---- blobs ------------------------------------------------------------- */

static int on_upload_progress(void *ctx, int64_t done)
{
	struct push_layer *l = ctx;
	if (atomic_load(&l->p->failed))
		return 1;
	if (done - l->last_report >= (1 << 20) || done == l->blob.size) {
		l->last_report = done;
		progress(l->p, l->diff_id, "Pushing", done, l->blob.size);
	}
	return 0;
}

/* 1 when the registry has the blob, 0 when not. */
static int blob_exists(struct push *p, const char *digest, struct orch_err *e)
{
	_cleanup_free_ char *url = xasprintf("blobs/%s", digest);
	struct reg_req rq = {.method = "HEAD", .url = url, .what = p->name};
	struct reg_resp resp;
	int r = reg_do(p->c, &rq, &resp, e);
	if (r < 0)
		return r;
	long st = resp.status;
	if (st != 200 && st != 404)
		r = reg_fail(p->c, &resp, p->name, e);
	reg_resp_clear(&resp);
	return r < 0 ? r : st == 200;
}

/* POSTs an upload (a mount when from is set): 1 when the blob was
 * mounted, 0 with *location where to PUT it. */
static int upload_start(struct push *p, const char *digest, const char *from,
			char **location, struct orch_err *e)
{
	_cleanup_free_ char *url =
	    from ? xasprintf("blobs/uploads/?mount=%s&from=%s", digest, from)
		 : xstrdup("blobs/uploads/");
	struct reg_req rq = {.method = "POST", .url = url, .what = p->name};
	struct reg_resp resp;
	int r = reg_do(p->c, &rq, &resp, e);
	if (r < 0)
		return r;
	if (from && resp.status == 201) {
		reg_resp_clear(&resp);
		return 1;
	}
	if (from && resp.status != 202) {
		/* Not allowed to read the other repository: sent instead. */
		reg_resp_clear(&resp);
		return 0;
	}
	if (resp.status != 202 || !resp.location) {
		r = resp.status == 202
			? err_set(e, EPROTO,
				  "%s: %s started an upload without a Location",
				  p->name, reg_domain(p->c))
			: reg_fail(p->c, &resp, p->name, e);
		reg_resp_clear(&resp);
		return r;
	}
	*location = move_ptr(resp.location);
	reg_resp_clear(&resp);
	return 0;
}

/* Sends one blob (from memory when data is set, else from path) unless
 * the registry has it or can mount it. */
static int blob_push(struct push *p, struct push_layer *l, const char *digest,
		     int64_t size, const char *path, const void *data,
		     struct orch_err *e)
{
	const char *label = l ? l->diff_id : "config";
	int r = blob_exists(p, digest, e);
	if (r != 0) {
		if (r > 0 && l)
			progress(p, label, "Layer already exists", -1, -1);
		return r < 0 ? r : 0;
	}
	_cleanup_free_ char *location = NULL;
	for (size_t i = 0; l && p->mount_from[i] && !location; i++) {
		r = upload_start(p, digest, p->mount_from[i], &location, e);
		if (r < 0)
			return r;
		if (r > 0) {
			_cleanup_free_ char *st =
			    xasprintf("Mounted from %s", p->mount_from[i]);
			progress(p, label, st, -1, -1);
			return 0;
		}
	}
	if (!location && (r = upload_start(p, digest, NULL, &location, e)) < 0)
		return r;
	if (!location || (!data && !path))
		return err_set(e, EINVAL, "%s: nothing to upload", p->name);
	_cleanup_close_ int fd = -1;
	if (!data && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return err_sys(e, errno, "opening %s", path);
	_cleanup_free_ char *url = xasprintf(
	    "%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?',
	    digest);
	_cleanup_free_ char *what = xasprintf("%s: %s %s", p->name,
					      l ? "layer" : "config", digest);
	struct reg_req rq = {.method = "PUT",
			     .url = url,
			     .content_type = "application/octet-stream",
			     .body = data,
			     .body_len = (size_t)size,
			     .from_fd = !data,
			     .body_fd = fd,
			     .progress = l ? on_upload_progress : NULL,
			     .progress_ctx = l,
			     .what = what};
	struct reg_resp resp;
	r = reg_do(p->c, &rq, &resp, e);
	if (r < 0)
		return r;
	if (resp.status != 201 && resp.status != 204)
		r = reg_fail(p->c, &resp, what, e);
	reg_resp_clear(&resp);
	if (r == 0 && l)
		progress(p, label, "Pushed", size, size);
	return r;
}

/* ---- layers ------------------------------------------------------------ */

static int layer_prepare(struct push_layer *l, struct orch_err *e)
{
	int r = layer_blob_get(l->diff_id, &l->blob, e);
	if (r < 0 || l->blob.foreign_type ||
	    !streq(l->blob.compression, "none"))
		return r;
	r = store_tmpdir("push", &l->tmp, &l->tmp_lock, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *src = xstrdup(l->blob.path);
	_cleanup_free_ char *dst = path_join(l->tmp, "layer.tar.gz");
	return gzip_file(src, dst, &l->blob, e);
}

static void *layer_push_run(void *arg)
{
	struct push_layer *l = arg;
	struct push *p = l->p;
	reg_slot_take();
	if (atomic_load(&p->failed)) {
		l->rc = -ECANCELED;
	} else {
		progress(p, l->diff_id, "Preparing", -1, -1);
		l->rc = layer_prepare(l, &l->err);
		/* As docker: a foreign layer is named, not sent. */
		if (l->rc == 0 && l->blob.foreign_type)
			progress(p, l->diff_id, "Skipped foreign layer", -1,
				 -1);
		else if (l->rc == 0)
			l->rc = blob_push(p, l, l->blob.digest, l->blob.size,
					  l->blob.path, NULL, &l->err);
	}
	reg_slot_give();
	if (l->rc < 0)
		atomic_store(&p->failed, true);
	return NULL;
}

static int push_layers(struct push *p, struct push_layer *ls, size_t n,
		       struct orch_err *e)
{
	size_t started = 0;
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		ls[i].p = p;
		ls[i].diff_id = p->img->layers[i];
		ls[i].tmp_lock = -1;
		int pr = pthread_create(&ls[i].thread, NULL, layer_push_run,
					&ls[i]);
		if (pr != 0) {
			r = err_sys(e, pr, "starting a layer thread");
			atomic_store(&p->failed, true);
			break;
		}
		started++;
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(ls[i].thread, NULL);
	/* The first real failure, not a layer stopped because of it. */
	for (int pass = 0; pass < 2 && r == 0; pass++)
		for (size_t i = 0; i < started && r == 0; i++)
			if (ls[i].rc < 0 &&
			    (pass == 1 || ls[i].rc != -ECANCELED)) {
				*e = ls[i].err;
				r = ls[i].rc;
			}
	return r;
}

static void layers_free(struct push_layer *ls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ls[i].tmp)
			rm_rf(ls[i].tmp, NULL);
		free(ls[i].tmp);
		if (ls[i].tmp_lock >= 0)
			close(ls[i].tmp_lock);
		layer_blob_clear(&ls[i].blob);
	}
	free(ls);
}

/* ---- the manifest ------------------------------------------------------ */

static char *manifest_make(const struct push_layer *ls, size_t n,
			   const char *config_digest, size_t config_len,
			   const char **mt)
{
	bool oci = false;
	for (size_t i = 0; i < n; i++) {
		const char *ft = ls[i].blob.foreign_type;
		oci = oci || (ft ? !streq(ft, MT_DOCKER_FOREIGN)
				 : !streq(ls[i].blob.compression, "gzip"));
	}
	*mt = oci ? MT_OCI_MANIFEST : MT_DOCKER_MANIFEST;
	json_t *layers = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct layer_blob *b = &ls[i].blob;
		_cleanup_free_ char *lmt =
		    b->foreign_type ? xstrdup(b->foreign_type)
		    : !oci	    ? xstrdup(MT_DOCKER_LAYER)
		    : streq(b->compression, "none")
			? xstrdup(MT_OCI_LAYER)
			: xasprintf("%s+%s", MT_OCI_LAYER, b->compression);
		json_t *d = json_pack("{s:s,s:I,s:s}", "mediaType", lmt, "size",
				      (json_int_t)b->size, "digest", b->digest);
		if (b->foreign_urls)
			json_object_set(d, "urls", b->foreign_urls);
		json_array_append_new(layers, d);
	}
	json_t *m = json_pack(
	    "{s:i,s:s,s:{s:s,s:I,s:s},s:o}", "schemaVersion", 2, "mediaType",
	    *mt, "config", "mediaType", oci ? MT_OCI_CONFIG : MT_DOCKER_CONFIG,
	    "size", (json_int_t)config_len, "digest", config_digest, "layers",
	    layers);
	char *text = json_dumps(m, JSON_INDENT(3) | JSON_PRESERVE_ORDER);
	json_decref(m);
	return text;
}

static int manifest_put(struct push *p, const char *text, const char *mt,
			struct rt_push_result *res, struct orch_err *e)
{
	_cleanup_free_ char *url = xasprintf("manifests/%s", p->ref.tag);
	struct reg_req rq = {.method = "PUT",
			     .url = url,
			     .content_type = mt,
			     .body = text,
			     .body_len = strlen(text),
			     .what = p->name};
	struct reg_resp resp;
	int r = reg_do(p->c, &rq, &resp, e);
	if (r < 0)
		return r;
	if (resp.status != 201 && resp.status != 200)
		r = reg_fail(p->c, &resp, p->name, e);
	reg_resp_clear(&resp);
	if (r < 0)
		return r;
	char hex[65];
	sha256_hex(text, strlen(text), hex);
	snprintf(res->digest, sizeof(res->digest), "sha256:%s", hex);
	res->size = (int64_t)strlen(text);
	return 0;
}

/* ---- the whole push ---------------------------------------------------- */

/* Other repositories of the same registry this image is known under:
 * where its blobs may already be. */
static char **mount_sources(const struct push *p)
{
	char **v = xcalloc(1, sizeof(char *));
	char **lists[] = {p->img->names, p->img->digests};
	for (size_t k = 0; k < ARRAY_SIZE(lists); k++)
		for (size_t i = 0; lists[k] && lists[k][i]; i++) {
			struct image_ref r;
			if (image_ref_parse(lists[k][i], &r, NULL) < 0)
				continue;
			if (streq(r.domain, p->ref.domain) &&
			    !streq(r.path, p->ref.path) &&
			    !strv_contains(v, r.path))
				strv_push(&v, r.path);
			image_ref_clear(&r);
		}
	return v;
}

static int push_run(struct push *p, struct rt_push_result *res,
		    struct orch_err *e)
{
	_cleanup_free_ char *config = NULL;
	size_t config_len = 0;
	int r = image_config_read(p->img->id, &config, &config_len, e);
	if (r < 0)
		return r;
	r = reg_open(p->ref.domain, p->ref.path, "pull,push", NULL, NULL,
		     &p->c, e);
	if (r < 0)
		return r;
	p->mount_from = mount_sources(p);
	for (size_t i = 0; p->mount_from[i]; i++) {
		_cleanup_free_ char *scope =
		    xasprintf("repository:%s:pull", p->mount_from[i]);
		reg_add_scope(p->c, scope);
	}
	size_t n = strv_len(p->img->layers);
	struct push_layer *ls = xcalloc(n ? n : 1, sizeof(*ls));
	/* Image removal must not take a layer being sent. */
	_cleanup_close_ int lock = store_lock(STORE_LAYERS_LOCK, LOCK_SH, e);
	r = lock < 0 ? lock : push_layers(p, ls, n, e);
	char cdigest[72] = "sha256:";
	sha256_hex(config, config_len, cdigest + 7);
	if (r == 0)
		r = blob_push(p, NULL, cdigest, (int64_t)config_len, NULL,
			      config, e);
	if (r == 0) {
		const char *mt;
		_cleanup_free_ char *text =
		    manifest_make(ls, n, cdigest, config_len, &mt);
		r = manifest_put(p, text, mt, res, e);
	}
	layers_free(ls, n);
	if (r < 0)
		return r;
	/* Known by its digest there from now on, as docker records it. */
	_cleanup_free_ char *fam = image_ref_familiar(&p->ref);
	_cleanup_free_ char *by_digest = xasprintf("%s@%s", fam, res->digest);
	char *refs[] = {by_digest, NULL};
	char id[65];
	return image_store_config(config, config_len, refs, id, e);
}

int rt_image_push(const char *ref, const struct rt_push_opts *o,
		  struct rt_push_result *res, struct orch_err *e)
{
	struct push p = {.o = o};
	memset(res, 0, sizeof(*res));
	int r = image_ref_parse(ref, &p.ref, e);
	if (r < 0)
		return r;
	if (p.ref.digest) {
		image_ref_clear(&p.ref);
		return err_set(e, EINVAL,
			       "%s: a push names a tag, not a digest", ref);
	}
	p.name = image_ref_string(&p.ref);
	struct orch_err le = {0};
	r = rt_image_lookup(p.name, &p.img, &le);
	if (r < 0)
		r = err_set(e, -r,
			    "%s: no such image in the store (tag a local "
			    "image with `orch image tag IMAGE %s` first)",
			    p.name, p.name);
	else
		r = push_run(&p, res, e);
	reg_close(p.c);
	strv_free(p.mount_from);
	rt_image_free(p.img);
	free(p.name);
	image_ref_clear(&p.ref);
	return r;
}
