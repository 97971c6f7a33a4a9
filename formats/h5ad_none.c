/* h5ad_none.c - the .h5ad reader of a library built without HDF5: every file
 * is still recognised (so the message is the right one), none is opened. */
#include "h5ad.h"

#include <string.h>

#include "last_error.h"

int h5ad_is_hdf5(const char *path)
{
	size_t l = path ? strlen(path) : 0;
	return (l > 5 && strcmp(path + l - 5, ".h5ad") == 0) || (l > 3 && strcmp(path + l - 3, ".h5") == 0);
}

int h5ad_open(const char *path, h5ad **out)
{
	*out = NULL;
	return ab_error_set(AB_EUNSUPPORTED, "%s: .h5ad input needs HDF5, and this libannbatch was built without "
			    "HDF5 (install libhdf5-dev and run configure --with-hdf5)", path);
}

/* Nothing below is reached: no h5ad or h5ad_col is ever made. */
void h5ad_close(h5ad *h) { (void)h; }
void h5ad_get_info(const h5ad *h, ab_anndata_info *info) { (void)h; memset(info, 0, sizeof *info); }
uint64_t h5ad_x_nnz(const h5ad *h, uint64_t s, uint64_t e) { (void)h, (void)s, (void)e; return 0; }
int h5ad_x_read_csr(h5ad *h, uint64_t s, uint64_t e, int64_t *ip, int64_t *ix, void *d)
{
	(void)h, (void)s, (void)e, (void)ip, (void)ix, (void)d;
	return AB_EUNSUPPORTED;
}
int h5ad_x_read_dense(h5ad *h, uint64_t s, uint64_t e, void *dst, size_t n)
{
	(void)h, (void)s, (void)e, (void)dst, (void)n;
	return AB_EUNSUPPORTED;
}
const char *const *h5ad_obs_columns(const h5ad *h) { (void)h; return NULL; }
const char *const *h5ad_var_columns(const h5ad *h) { (void)h; return NULL; }
int h5ad_column_open(h5ad *h, const char *f, const char *n, h5ad_col **out)
{
	(void)h, (void)f, (void)n;
	*out = NULL;
	return AB_EUNSUPPORTED;
}
void h5ad_column_close(h5ad_col *c) { (void)c; }
void h5ad_column_get_info(const h5ad_col *c, ab_column_info *info) { (void)c; memset(info, 0, sizeof *info); }
const char *h5ad_column_name(const h5ad_col *c) { (void)c; return ""; }
int h5ad_column_read_values(h5ad_col *c, uint64_t s, uint64_t e, void *d, size_t n)
{
	(void)c, (void)s, (void)e, (void)d, (void)n;
	return AB_EUNSUPPORTED;
}
int h5ad_column_read_mask(h5ad_col *c, uint64_t s, uint64_t e, uint8_t *m)
{
	(void)c, (void)s, (void)e, (void)m;
	return AB_EUNSUPPORTED;
}
int h5ad_column_read_raw_strings(h5ad_col *c, uint64_t s, uint64_t e, char ***out)
{
	(void)c, (void)s, (void)e, (void)out;
	return AB_EUNSUPPORTED;
}
int h5ad_column_read_codes(h5ad_col *c, uint64_t s, uint64_t e, int64_t *codes)
{
	(void)c, (void)s, (void)e, (void)codes;
	return AB_EUNSUPPORTED;
}
int h5ad_column_labels(h5ad_col *c, char *const **labels, size_t *n)
{
	(void)c, (void)labels, (void)n;
	return AB_EUNSUPPORTED;
}
