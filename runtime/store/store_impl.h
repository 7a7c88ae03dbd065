/* Private to runtime/store/: what the image store's files (image.c,
 * layer.c, load.c, volume.c, refparse.c) share with each other and with
 * their unit tests.  The public API is store.h. */
#ifndef ORCH_RUNTIME_STORE_IMPL_H
#define ORCH_RUNTIME_STORE_IMPL_H

#include "runtime/store/store.h"

#include <jansson.h>
#include <sys/stat.h>

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
int64_t layer_size(const char *diff_id);

/* Unpacks a plain archive (a docker-save or OCI tarball) into dest with
 * the same path checks, regular files and directories only. */
int archive_unpack_plain(const char *path, const char *dest,
			 struct orch_err *e);

/* ---- trees (tree.c) ---------------------------------------------------- */

typedef int (*entry_fn)(int dfd, const char *name, const struct stat *st,
			void *arg, struct orch_err *e);
/* fn for each entry of directory dfd but . and .. (with its lstat), until
 * one fails. */
int dir_each(int dfd, entry_fn fn, void *arg, struct orch_err *e);

/* Removes the scratch directories of dead owners, unless another process
 * is making one at this moment. */
void store_tmp_sweep(void);

/* layer_store_fd for a tarball the store made itself (own: its path,
 * hard-linked as the layer's blob rather than copied); layer_upper.c's. */
int layer_store_own(int fd, const char *path, const char *own,
		    const struct layer_expect *want, char **diff_id_out,
		    struct orch_err *e);

#endif
