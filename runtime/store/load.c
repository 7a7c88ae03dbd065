/* Loading images: `docker save` archives and OCI image layouts, each as a
 * directory or a tarball.  A tarball is first unpacked (regular files and
 * directories only, with the layer extraction's path checks) into a
 * scratch directory of the store.  Every blob whose digest is named is
 * verified while it is read. */
#include "runtime/store/store_impl.h"

#include <ctype.h>
#include <libgen.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>

/* root/rel, refusing names that would leave root. */
static int blob_path(const char *root, const char *rel, char **out,
		     struct orch_err *e)
{
	_cleanup_free_ char *clean = NULL;
	if (!rel || tar_path_clean(rel, &clean) < 0 || !*clean)
		return err_set(e, EINVAL,
			       "bad file name \"%s\" in the manifest",
			       rel ? rel : "(null)");
	*out = path_join(root, clean);
	return 0;
}

static int read_blob(const char *path, const char *digest, char **data,
		     size_t *len, struct orch_err *e)
{
	int r = read_file(path, data, len, e);
	if (r < 0)
		return r;
	if (!digest)
		return 0;
	char hex[65];
	sha256_hex(*data, *len, hex);
	if (!startswith(digest, "sha256:") || !streq(digest + 7, hex)) {
		free(*data);
		*data = NULL;
		return err_set(
		    e, EBADMSG,
		    "%s: digest mismatch: expected %s, got sha256:%s", path,
		    digest, hex);
	}
	return 0;
}

static int load_json(const char *path, const char *digest, json_t **out,
		     char **raw, size_t *rawlen, struct orch_err *e)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = read_blob(path, digest, &data, &len, e);
	if (r < 0)
		return r;
	json_error_t je;
	json_t *j = json_loadb(data, len, 0, &je);
	if (!j)
		return err_set(e, EINVAL, "%s: %s (line %d)", path, je.text,
			       je.line);
	*out = j;
	if (raw) {
		*raw = move_ptr(data);
		*rawlen = len;
	}
	return 0;
}

/* Stores the layers of config (diff_ids) from the files in paths, then the
 * image itself. */
static int store_image(const char *cfg_raw, size_t cfg_len, json_t *cfg,
		       char *const *paths, char *const *blob_digests,
		       char *const *refs, char id[65], struct orch_err *e)
{
	json_t *diff_ids =
	    json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (!json_is_array(diff_ids))
		return err_set(e, EINVAL,
			       "image config has no rootfs.diff_ids");
	size_t n = strv_len(paths);
	if (json_array_size(diff_ids) != n)
		return err_set(e, EINVAL,
			       "image has %zu layers but its config lists %zu",
			       n, json_array_size(diff_ids));
	for (size_t i = 0; i < n; i++) {
		struct layer_expect want = {
		    .diff_id = json_string_value(json_array_get(diff_ids, i)),
		    .blob_digest = blob_digests ? blob_digests[i] : NULL,
		};
		if (!want.diff_id)
			return err_set(e, EINVAL, "layer %zu has no diff_id",
				       i);
		int r = layer_store(paths[i], &want, NULL, e);
		if (r < 0)
			return r;
	}
	return image_store_config(cfg_raw, cfg_len, refs, id, e);
}

/* "blobs/sha256/<hex>" names its own digest. */
static char *blob_name_digest(const char *rel)
{
	_cleanup_free_ char *clean = NULL;
	if (tar_path_clean(rel, &clean) < 0 ||
	    !startswith(clean, "blobs/sha256/"))
		return NULL;
	const char *hex = clean + strlen("blobs/sha256/");
	if (strlen(hex) != 64 || !is_hex_string(hex, 64))
		return NULL;
	return xasprintf("sha256:%s", hex);
}

static char **strv_from_json(json_t *arr)
{
	char **v = xcalloc(1, sizeof(char *));
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x) if (json_is_string(x))
	    strv_push(&v, json_string_value(x));
	return v;
}

static void free_array(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* One entry of a docker-archive's manifest.json:
 * {"Config": "...", "RepoTags": [...], "Layers": [...]} */
static int load_docker_image(const char *root, json_t *ent, char ***refs_out,
			     struct orch_err *e)
{
	const char *crel = json_string_value(json_object_get(ent, "Config"));
	_cleanup_free_ char *cpath = NULL, *raw = NULL, *cdigest = NULL;
	int r = blob_path(root, crel, &cpath, e);
	if (r < 0)
		return r;
	/* Older archives name the config <hex>.json, newer ones
	 * blobs/sha256/<hex>; either way its digest is known. */
	const char *base = strrchr(crel, '/');
	base = base ? base + 1 : crel;
	if (strlen(base) == 69 && streq(base + 64, ".json")) {
		_cleanup_free_ char *hex = xstrndup(base, 64);
		if (is_hex_string(hex, 64))
			cdigest = xasprintf("sha256:%s", hex);
	} else {
		cdigest = blob_name_digest(crel);
	}
	json_t *cfg;
	size_t len;
	r = load_json(cpath, cdigest, &cfg, &raw, &len, e);
	if (r < 0)
		return r;
	json_t *layers = json_object_get(ent, "Layers");
	size_t n = json_array_size(layers);
	_cleanup_strv_ char **paths = xcalloc(1, sizeof(char *));
	char **digests = xcalloc(n + 1, sizeof(char *));
	for (size_t k = 0; k < n && r == 0; k++) {
		const char *rel = json_string_value(json_array_get(layers, k));
		_cleanup_free_ char *p = NULL;
		r = blob_path(root, rel, &p, e);
		if (r == 0) {
			strv_push(&paths, p);
			digests[k] = blob_name_digest(rel);
		}
	}
	_cleanup_strv_ char **tags =
	    strv_from_json(json_object_get(ent, "RepoTags"));
	char id[65];
	if (r == 0)
		r = store_image(raw, len, cfg, paths, digests, tags, id, e);
	json_decref(cfg);
	free_array(digests, n);
	if (r < 0)
		return r;
	for (size_t k = 0; tags[k]; k++)
		strv_push(refs_out, tags[k]);
	if (!tags[0]) {
		_cleanup_free_ char *s = xasprintf("sha256:%s", id);
		strv_push(refs_out, s);
	}
	return 0;
}

static int load_docker(const char *root, char ***refs_out, struct orch_err *e)
{
	_cleanup_free_ char *mpath = path_join(root, "manifest.json");
	json_t *m;
	int r = load_json(mpath, NULL, &m, NULL, NULL, e);
	if (r < 0)
		return r;
	if (!json_is_array(m)) {
		json_decref(m);
		return err_set(e, EINVAL, "%s: not a list of images", mpath);
	}
	size_t i;
	json_t *ent;
	json_array_foreach(m, i, ent)
	{
		r = load_docker_image(root, ent, refs_out, e);
		if (r < 0)
			break;
	}
	json_decref(m);
	return r;
}

static const char *host_arch(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		return "amd64";
	if (streq(u.machine, "x86_64"))
		return "amd64";
	if (streq(u.machine, "aarch64"))
		return "arm64";
	return "unknown";
}

static bool is_index_type(const char *mt)
{
	return mt && (streq(mt, "application/vnd.oci.image.index.v1+json") ||
		      streq(mt, "application/vnd.docker.distribution.manifest."
				"list.v2+json"));
}

/* The path of the blob a descriptor names. */
static int desc_blob(const char *root, json_t *desc, char **path,
		     const char **digest, struct orch_err *e)
{
	*digest = json_string_value(json_object_get(desc, "digest"));
	if (!*digest || !startswith(*digest, "sha256:") ||
	    strlen(*digest) != 71 || !is_hex_string(*digest + 7, 64))
		return err_set(e, EINVAL,
			       "unsupported or missing digest \"%s\"",
			       *digest ? *digest : "");
	*path = xasprintf("%s/blobs/sha256/%s", root, *digest + 7);
	return 0;
}

/* The full name for an index entry: containerd's annotation, or the
 * ref.name one; a bare tag there is joined to the layout's own name. */
static char *oci_ref(json_t *desc, const char *layout_name)
{
	json_t *ann = json_object_get(desc, "annotations");
	const char *full =
	    json_string_value(json_object_get(ann, "io.containerd.image.name"));
	if (full)
		return xstrdup(full);
	const char *ref = json_string_value(
	    json_object_get(ann, "org.opencontainers.image.ref.name"));
	if (!ref)
		return NULL;
	if (strchr(ref, ':') || strchr(ref, '/'))
		return xstrdup(ref);
	return xasprintf("%s:%s", layout_name, ref);
}

static int load_oci_manifest(const char *root, json_t *desc, const char *ref,
			     char ***refs_out, int depth, struct orch_err *e);

/* Picks this host's platform out of an index, else its first entry. */
static int load_oci_index(const char *root, json_t *idx, const char *ref,
			  char ***refs_out, int depth, struct orch_err *e)
{
	json_t *ms = json_object_get(idx, "manifests");
	json_t *pick = NULL;
	size_t i;
	json_t *d;
	json_array_foreach(ms, i, d)
	{
		json_t *pf = json_object_get(d, "platform");
		const char *arch =
		    json_string_value(json_object_get(pf, "architecture"));
		const char *os = json_string_value(json_object_get(pf, "os"));
		if ((!os || streq(os, "linux")) &&
		    (!arch || streq(arch, host_arch()))) {
			pick = d;
			break;
		}
	}
	if (!pick)
		return err_set(e, ENOENT,
			       "no manifest for linux/%s in the index",
			       host_arch());
	return load_oci_manifest(root, pick, ref, refs_out, depth + 1, e);
}

static int load_oci_manifest(const char *root, json_t *desc, const char *ref,
			     char ***refs_out, int depth, struct orch_err *e)
{
	if (depth > 4)
		return err_set(e, ELOOP, "image indexes nested too deeply");
	_cleanup_free_ char *mpath = NULL;
	const char *mdigest;
	int r = desc_blob(root, desc, &mpath, &mdigest, e);
	if (r < 0)
		return r;
	json_t *m;
	r = load_json(mpath, mdigest, &m, NULL, NULL, e);
	if (r < 0)
		return r;
	const char *mt = json_string_value(json_object_get(m, "mediaType"));
	if (!mt)
		mt = json_string_value(json_object_get(desc, "mediaType"));
	if (is_index_type(mt) || json_object_get(m, "manifests")) {
		r = load_oci_index(root, m, ref, refs_out, depth, e);
		json_decref(m);
		return r;
	}
	_cleanup_free_ char *cpath = NULL, *raw = NULL;
	const char *cdigest;
	json_t *cfg = NULL;
	size_t len;
	r = desc_blob(root, json_object_get(m, "config"), &cpath, &cdigest, e);
	if (r == 0)
		r = load_json(cpath, cdigest, &cfg, &raw, &len, e);
	json_t *layers = json_object_get(m, "layers");
	size_t n = json_array_size(layers);
	_cleanup_strv_ char **paths = xcalloc(1, sizeof(char *));
	char **digests = xcalloc(n + 1, sizeof(char *));
	for (size_t k = 0; k < n && r == 0; k++) {
		_cleanup_free_ char *p = NULL;
		const char *d;
		r = desc_blob(root, json_array_get(layers, k), &p, &d, e);
		if (r == 0) {
			strv_push(&paths, p);
			digests[k] = xstrdup(d);
		}
	}
	char *refs[] = {(char *)ref, NULL};
	char id[65];
	if (r == 0)
		r = store_image(raw, len, cfg, paths, digests,
				ref ? refs : NULL, id, e);
	free_array(digests, n);
	json_decref(cfg);
	json_decref(m);
	if (r < 0)
		return r;
	_cleanup_free_ char *shown =
	    ref ? xstrdup(ref) : xasprintf("sha256:%s", id);
	strv_push(refs_out, shown);
	return 0;
}

static int load_oci(const char *root, const char *layout_name, char ***refs_out,
		    struct orch_err *e)
{
	_cleanup_free_ char *ipath = path_join(root, "index.json");
	json_t *idx;
	int r = load_json(ipath, NULL, &idx, NULL, NULL, e);
	if (r < 0)
		return r;
	json_t *ms = json_object_get(idx, "manifests");
	if (!json_is_array(ms) || json_array_size(ms) == 0) {
		json_decref(idx);
		return err_set(e, EINVAL, "%s lists no image", ipath);
	}
	size_t i;
	json_t *d;
	json_array_foreach(ms, i, d)
	{
		_cleanup_free_ char *ref = oci_ref(d, layout_name);
		r = load_oci_manifest(root, d, ref, refs_out, 0, e);
		if (r < 0)
			break;
	}
	json_decref(idx);
	return r;
}

/* "dir/busybox-oci.tar.gz" -> "busybox-oci" (a lowercase image name). */
static char *layout_name(const char *path)
{
	_cleanup_free_ char *copy = xstrdup(path);
	size_t n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	char *name = xstrdup(basename(copy));
	char *dot = strchr(name, '.');
	if (dot && dot != name)
		*dot = '\0';
	for (char *p = name; *p; p++) {
		*p = (char)tolower((unsigned char)*p);
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			*p = '-';
	}
	return name;
}

int rt_image_load(const char *path, char ***refs, struct orch_err *e)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return err_sys(e, errno, "loading %s", path);
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int tmp_lock = -1;
	const char *root = path;
	int r;
	if (!S_ISDIR(st.st_mode)) {
		r = store_tmpdir("load", &tmp, &tmp_lock, e);
		if (r < 0)
			return r;
		r = archive_unpack_plain(path, tmp, e);
		if (r < 0) {
			rm_rf(tmp, NULL);
			return err_wrap(e, "loading %s", path);
		}
		root = tmp;
	}
	_cleanup_close_ int lock = store_lock(STORE_LAYERS_LOCK, LOCK_SH, e);
	if (lock < 0) {
		if (tmp)
			rm_rf(tmp, NULL);
		return lock;
	}
	_cleanup_free_ char *manifest = path_join(root, "manifest.json");
	_cleanup_free_ char *index = path_join(root, "index.json");
	_cleanup_free_ char *name = layout_name(path);
	char **out = xcalloc(1, sizeof(char *));
	if (access(manifest, F_OK) == 0)
		r = load_docker(root, &out, e);
	else if (access(index, F_OK) == 0)
		r = load_oci(root, name, &out, e);
	else
		r = err_set(e, EINVAL,
			    "neither a docker-archive (manifest.json) nor an "
			    "OCI layout (index.json)");
	if (tmp)
		rm_rf(tmp, NULL);
	if (r < 0) {
		strv_free(out);
		return err_wrap(e, "loading %s", path);
	}
	*refs = out;
	return 0;
}
