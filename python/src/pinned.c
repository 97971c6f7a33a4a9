/* pinned.c - CUDA pinned host memory for batches (preload_to_gpu). CUDA's
 * runtime is looked up at run time, so the extension has no build-time
 * dependency on CUDA: a machine without it simply has no pinned memory. */
#include "binding.h"

#include <dlfcn.h>

typedef int (*cuda_host_alloc_fn)(void **p, size_t size, unsigned flags);
typedef int (*cuda_free_host_fn)(void *p);
static cuda_host_alloc_fn cuda_host_alloc;
static cuda_free_host_fn cuda_free_host;

void *abpy_pinned_alloc(size_t size, void *ctx)
{
	(void)ctx;
	void *p = NULL;
	return cuda_host_alloc(&p, size, 0) == 0 ? p : NULL;
}

void abpy_pinned_free(void *p, size_t size, void *ctx)
{
	(void)size;
	(void)ctx;
	cuda_free_host(p);
}

int abpy_cuda_runtime(void)
{
	static const char *const names[] = {"libcudart.so", "libcudart.so.12", "libcudart.so.11.0", NULL};
	if (cuda_host_alloc)
		return 1;
	for (int i = 0; names[i]; i++) {
		void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (!h)
			continue;
		cuda_host_alloc_fn a = (cuda_host_alloc_fn)dlsym(h, "cudaHostAlloc");
		cuda_free_host_fn f = (cuda_free_host_fn)dlsym(h, "cudaFreeHost");
		int count = 0;
		int (*device_count)(int *) = (int (*)(int *))dlsym(h, "cudaGetDeviceCount");
		if (a && f && device_count && device_count(&count) == 0 && count > 0) {
			cuda_host_alloc = a;
			cuda_free_host = f;
			return 1; /* the handle stays open for the process */
		}
		dlclose(h);
	}
	return 0;
}
