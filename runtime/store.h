/* Internal to runtime/: what the image store's files (image.c, layer.c,
 * load.c, volume.c) share with each other and with their unit tests.
 * Nothing outside runtime/ includes this; the public API is runtime.h. */
#ifndef ORCH_RUNTIME_STORE_H
#define ORCH_RUNTIME_STORE_H

#include "runtime/runtime.h"

#include <jansson.h>

/* ---- paths and names (pure) -------------------------------------------- */

/* Normalizes a tar entry name to a relative path inside the layer:
 * "./a//b/" -> "a/b", "." or "./" -> "".  Refuses (-EINVAL) absolute
 * names and any ".." component, which would leave the layer. */
int tar_path_clean(const char *name, char **out);

enum whiteout_kind {
	WHITEOUT_NONE,
	WHITEOUT_FILE,	 /* ".wh.NAME": NAME is deleted */
	WHITEOUT_OPAQUE, /* ".wh..wh..opq": the directory hides lower ones */
};
/* Classifies a cleaned entry path by its last component.  For
 * WHITEOUT_FILE, *target is the path of the deleted entry. */
enum whiteout_kind whiteout_parse(const char *path, char **target);

/* An image reference as docker parses it (runtime/refparse.c):
 * "busybox" is domain "docker.io", path "library/busybox", tag "latest". */
struct image_ref {
	char *domain; /* "docker.io", "localhost:5000", "[::1]:5000" */
	char *path;   /* "library/busybox", "team/app" */
	char *tag;    /* NULL when only a digest was given */
	char *digest; /* "sha256:<hex>" or NULL */
};
int image_ref_parse(const char *ref, struct image_ref *r, struct orch_err *e);
void image_ref_clear(struct image_ref *r);
/* The name as docker shows it: "busybox", "me/app", "localhost:5000/app". */
char *image_ref_familiar(const struct image_ref *r);
/* "domain/path". */
char *image_ref_repo(const struct image_ref *r);
/* familiar[:tag][@digest] */
char *image_ref_string(const struct image_ref *r);
/* The host to connect to: docker.io's registry is registry-1.docker.io. */
const char *image_ref_registry_host(const struct image_ref *r);
/* localhost, 127.0.0.0/8 and [::1] may answer in plain http. */
bool registry_allows_http(const char *domain);
/* "sha256:" + 64 lowercase hex digits (or sha512: + 128). */
bool digest_valid(const char *digest);

/* The store's key for a reference: "name:tag", or "name@sha256:..." when
 * it has a digest, with name in its familiar form.  Refuses malformed
 * references with a message. */
int image_ref_normalize(const char *ref, char **out, struct orch_err *e);

bool is_hex_string(const char *s, size_t min_len);

/* Volume names as docker allows them: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
bool volume_name_valid(const char *name);
/* Undoes /proc/self/mountinfo's octal escapes ("\040" for a space) in
 * place. */
void mountinfo_unescape(char *s);

/* ---- image config JSON (pure) ------------------------------------------ */

/* Fills cfg from the "config" object of an OCI image config. */
int image_config_from_json(json_t *config, struct rt_image_config *cfg,
			   struct orch_err *e);
/* The "config" object of an OCI image config for cfg. */
json_t *image_config_to_json(const struct rt_image_config *cfg);

/* ---- the store --------------------------------------------------------- */

/* $ORCH_ROOT/layers/<hex>/diff: the extracted tree of a layer. */
char *layer_dir(const char *diff_id);
bool layer_exists(const char *diff_id);
int64_t layer_size(const char *diff_id);

struct layer_expect {
	const char *diff_id;	 /* "sha256:<hex>" the tar must hash to */
	const char *blob_digest; /* "sha256:<hex>" the file must hash to */
	/* A foreign (non-distributable) layer's descriptor, as the manifest
	 * gave it: kept, so that a push names it instead of sending it. */
	const char *foreign_type;
	json_t *foreign_urls;
};
/* Extracts a (possibly gzip/zstd compressed) layer tarball into the store
 * once, verifying the digests given while reading; *diff_id_out (may be
 * NULL) receives "sha256:<hex>".  A layer already stored is not
 * extracted again. */
int layer_store(const char *path, const struct layer_expect *want,
		char **diff_id_out, struct orch_err *e);

/* The same, reading the tarball from fd (closed on return, whatever
 * happens); path only names it in messages.  The whole stream is read
 * (and hashed) unless an error stops it early. */
int layer_store_fd(int fd, const char *path, const struct layer_expect *want,
		   char **diff_id_out, struct orch_err *e);

/* The archive a layer was stored from, kept beside it (a pull's blob as
 * the registry sent it, a build's or a load's tarball). */
struct layer_blob {
	char digest[72];     /* "sha256:<hex>" of the file */
	char compression[8]; /* "gzip", "zstd" or "none" */
	int64_t size;
	char *path;
	char *foreign_type; /* a foreign layer's media type, else NULL */
	json_t *foreign_urls;
};
void layer_blob_clear(struct layer_blob *b);
int layer_blob_get(const char *diff_id, struct layer_blob *b,
		   struct orch_err *e);

/* Unpacks a plain archive (a docker-save or OCI tarball) into dest with
 * the same path checks, regular files and directories only. */
int archive_unpack_plain(const char *path, const char *dest,
			 struct orch_err *e);

/* Records an image from its raw OCI config bytes (id = their sha256) and
 * tags it with each of refs. */
int image_store_config(const char *config, size_t len, char *const *refs,
		       char id[65], struct orch_err *e);

/* The raw bytes of image id's config (their sha256 is id). */
int image_config_read(const char *id, char **data, size_t *len,
		      struct orch_err *e);

/* A private scratch directory under $ORCH_ROOT/tmp, locked (*lock) for
 * as long as the caller keeps *lock open; those of dead owners are
 * removed on the way. */
int store_tmpdir(const char *what, char **out, int *lock, struct orch_err *e);
/* Removes the scratch directories of dead owners, unless another process
 * is making one at this moment. */
void store_tmp_sweep(void);

/* Locks of the store ($ORCH_ROOT/images/<name>), flock op LOCK_SH or
 * LOCK_EX; returns the fd to close.  The index lock guards
 * repositories.json; the layers lock keeps image removal from deleting a
 * layer that a load or commit in progress has found stored.  Never take
 * the layers lock while holding the index lock. */
#define STORE_INDEX_LOCK  "lock"
#define STORE_LAYERS_LOCK "layers.lock"
int store_lock(const char *name, int op, struct orch_err *e);

#endif
