/* libarchive, libcrypto and libmd, opened at their first call rather
 * than linked.  Loading libarchive (with libxml2, ICU and libstdc++,
 * which Debian's needs) and libcrypto cost every orch command about 2 ms
 * at start-up, and every long-lived process some 600 KiB of relocated
 * pages, while most commands (ps, logs, up with every image present)
 * never call them.
 *
 * libmd hashes the small documents (configs, manifests, a service's
 * settings at every `up`): opening it and hashing a few KiB takes 0.3 ms
 * where libcrypto's first hash takes 5-6 ms (opening 4.7 MB and
 * initialising); libcrypto, three times faster per byte, hashes the
 * layers as they stream.
 *
 * A file that calls them includes this header instead of the libraries'
 * own: each function's name then stands for the pointer of that name in
 * a table filled when the library is first used.  A library that cannot
 * be opened is a fatal error naming it: both are dependencies of the
 * package. */
#ifndef ORCH_COMMON_LAZYLIB_H
#define ORCH_COMMON_LAZYLIB_H

#define OPENSSL_SUPPRESS_DEPRECATED
#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <sha2.h>

#define LAZY_ARCHIVE(X) \
	X(archive_entry_atime) \
	X(archive_entry_atime_is_set) \
	X(archive_entry_atime_nsec) \
	X(archive_entry_copy_stat) \
	X(archive_entry_copy_symlink) \
	X(archive_entry_filetype) \
	X(archive_entry_free) \
	X(archive_entry_gid) \
	X(archive_entry_hardlink) \
	X(archive_entry_linkify) \
	X(archive_entry_linkresolver_free) \
	X(archive_entry_linkresolver_new) \
	X(archive_entry_linkresolver_set_strategy) \
	X(archive_entry_mtime) \
	X(archive_entry_mtime_nsec) \
	X(archive_entry_new) \
	X(archive_entry_pathname) \
	X(archive_entry_perm) \
	X(archive_entry_rdev) \
	X(archive_entry_rdevmajor) \
	X(archive_entry_rdevminor) \
	X(archive_entry_set_filetype) \
	X(archive_entry_set_gid) \
	X(archive_entry_set_hardlink) \
	X(archive_entry_set_pathname) \
	X(archive_entry_set_uid) \
	X(archive_entry_size) \
	X(archive_entry_symlink) \
	X(archive_entry_uid) \
	X(archive_entry_xattr_add_entry) \
	X(archive_entry_xattr_next) \
	X(archive_entry_xattr_reset) \
	X(archive_error_string) \
	X(archive_filter_code) \
	X(archive_read_close) \
	X(archive_read_data) \
	X(archive_read_data_block) \
	X(archive_read_free) \
	X(archive_read_new) \
	X(archive_read_next_header) \
	X(archive_read_open) \
	X(archive_read_open_fd) \
	X(archive_read_support_filter_all) \
	X(archive_read_support_format_gnutar) \
	X(archive_read_support_format_raw) \
	X(archive_read_support_format_tar) \
	X(archive_set_error) \
	X(archive_write_add_filter_gzip) \
	X(archive_write_close) \
	X(archive_write_data) \
	X(archive_write_data_block) \
	X(archive_write_disk_new) \
	X(archive_write_disk_set_options) \
	X(archive_write_finish_entry) \
	X(archive_write_free) \
	X(archive_write_header) \
	X(archive_write_new) \
	X(archive_write_open) \
	X(archive_write_open_fd) \
	X(archive_write_open_filename) \
	X(archive_write_set_bytes_in_last_block) \
	X(archive_write_set_filter_option) \
	X(archive_write_set_format_pax_restricted) \
	X(archive_write_set_format_raw)

#define LAZY_CRYPTO(X) \
	X(EVP_DecodeBlock) \
	X(EVP_DigestFinal_ex) \
	X(EVP_DigestInit_ex) \
	X(EVP_DigestUpdate) \
	X(EVP_EncodeBlock) \
	X(EVP_MD_CTX_free) \
	X(EVP_MD_CTX_new) \
	X(EVP_sha256)

#define LAZY_MD(X) \
	X(SHA256Data)

#define LAZY_FIELD(f) __typeof__(f) *f;
struct lazy_archive {
	LAZY_ARCHIVE(LAZY_FIELD)
};
struct lazy_crypto {
	LAZY_CRYPTO(LAZY_FIELD)
};
struct lazy_md {
	LAZY_MD(LAZY_FIELD)
};
#undef LAZY_FIELD
const struct lazy_archive *lazy_archive(void);
const struct lazy_crypto *lazy_crypto(void);
const struct lazy_md *lazy_md(void);

#define archive_entry_atime (lazy_archive()->archive_entry_atime)
#define archive_entry_atime_is_set (lazy_archive()->archive_entry_atime_is_set)
#define archive_entry_atime_nsec (lazy_archive()->archive_entry_atime_nsec)
#define archive_entry_copy_stat (lazy_archive()->archive_entry_copy_stat)
#define archive_entry_copy_symlink (lazy_archive()->archive_entry_copy_symlink)
#define archive_entry_filetype (lazy_archive()->archive_entry_filetype)
#define archive_entry_free (lazy_archive()->archive_entry_free)
#define archive_entry_gid (lazy_archive()->archive_entry_gid)
#define archive_entry_hardlink (lazy_archive()->archive_entry_hardlink)
#define archive_entry_linkify (lazy_archive()->archive_entry_linkify)
#define archive_entry_linkresolver_free (lazy_archive()->archive_entry_linkresolver_free)
#define archive_entry_linkresolver_new (lazy_archive()->archive_entry_linkresolver_new)
#define archive_entry_linkresolver_set_strategy (lazy_archive()->archive_entry_linkresolver_set_strategy)
#define archive_entry_mtime (lazy_archive()->archive_entry_mtime)
#define archive_entry_mtime_nsec (lazy_archive()->archive_entry_mtime_nsec)
#define archive_entry_new (lazy_archive()->archive_entry_new)
#define archive_entry_pathname (lazy_archive()->archive_entry_pathname)
#define archive_entry_perm (lazy_archive()->archive_entry_perm)
#define archive_entry_rdev (lazy_archive()->archive_entry_rdev)
#define archive_entry_rdevmajor (lazy_archive()->archive_entry_rdevmajor)
#define archive_entry_rdevminor (lazy_archive()->archive_entry_rdevminor)
#define archive_entry_set_filetype (lazy_archive()->archive_entry_set_filetype)
#define archive_entry_set_gid (lazy_archive()->archive_entry_set_gid)
#define archive_entry_set_hardlink (lazy_archive()->archive_entry_set_hardlink)
#define archive_entry_set_pathname (lazy_archive()->archive_entry_set_pathname)
#define archive_entry_set_uid (lazy_archive()->archive_entry_set_uid)
#define archive_entry_size (lazy_archive()->archive_entry_size)
#define archive_entry_symlink (lazy_archive()->archive_entry_symlink)
#define archive_entry_uid (lazy_archive()->archive_entry_uid)
#define archive_entry_xattr_add_entry (lazy_archive()->archive_entry_xattr_add_entry)
#define archive_entry_xattr_next (lazy_archive()->archive_entry_xattr_next)
#define archive_entry_xattr_reset (lazy_archive()->archive_entry_xattr_reset)
#define archive_error_string (lazy_archive()->archive_error_string)
#define archive_filter_code (lazy_archive()->archive_filter_code)
#define archive_read_close (lazy_archive()->archive_read_close)
#define archive_read_data (lazy_archive()->archive_read_data)
#define archive_read_data_block (lazy_archive()->archive_read_data_block)
#define archive_read_free (lazy_archive()->archive_read_free)
#define archive_read_new (lazy_archive()->archive_read_new)
#define archive_read_next_header (lazy_archive()->archive_read_next_header)
#define archive_read_open (lazy_archive()->archive_read_open)
#define archive_read_open_fd (lazy_archive()->archive_read_open_fd)
#define archive_read_support_filter_all (lazy_archive()->archive_read_support_filter_all)
#define archive_read_support_format_gnutar (lazy_archive()->archive_read_support_format_gnutar)
#define archive_read_support_format_raw (lazy_archive()->archive_read_support_format_raw)
#define archive_read_support_format_tar (lazy_archive()->archive_read_support_format_tar)
#define archive_set_error (lazy_archive()->archive_set_error)
#define archive_write_add_filter_gzip (lazy_archive()->archive_write_add_filter_gzip)
#define archive_write_close (lazy_archive()->archive_write_close)
#define archive_write_data (lazy_archive()->archive_write_data)
#define archive_write_data_block (lazy_archive()->archive_write_data_block)
#define archive_write_disk_new (lazy_archive()->archive_write_disk_new)
#define archive_write_disk_set_options (lazy_archive()->archive_write_disk_set_options)
#define archive_write_finish_entry (lazy_archive()->archive_write_finish_entry)
#define archive_write_free (lazy_archive()->archive_write_free)
#define archive_write_header (lazy_archive()->archive_write_header)
#define archive_write_new (lazy_archive()->archive_write_new)
#define archive_write_open (lazy_archive()->archive_write_open)
#define archive_write_open_fd (lazy_archive()->archive_write_open_fd)
#define archive_write_open_filename (lazy_archive()->archive_write_open_filename)
#define archive_write_set_bytes_in_last_block (lazy_archive()->archive_write_set_bytes_in_last_block)
#define archive_write_set_filter_option (lazy_archive()->archive_write_set_filter_option)
#define archive_write_set_format_pax_restricted (lazy_archive()->archive_write_set_format_pax_restricted)
#define archive_write_set_format_raw (lazy_archive()->archive_write_set_format_raw)

#define EVP_DecodeBlock (lazy_crypto()->EVP_DecodeBlock)
#define EVP_DigestFinal_ex (lazy_crypto()->EVP_DigestFinal_ex)
#define EVP_DigestInit_ex (lazy_crypto()->EVP_DigestInit_ex)
#define EVP_DigestUpdate (lazy_crypto()->EVP_DigestUpdate)
#define EVP_EncodeBlock (lazy_crypto()->EVP_EncodeBlock)
#define EVP_MD_CTX_free (lazy_crypto()->EVP_MD_CTX_free)
#define EVP_MD_CTX_new (lazy_crypto()->EVP_MD_CTX_new)
#define EVP_sha256 (lazy_crypto()->EVP_sha256)

#define SHA256Data (lazy_md()->SHA256Data)

#endif
