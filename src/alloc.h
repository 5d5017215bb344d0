/* The allocator of synosh's Lua state: small blocks come from size classes
   without a per-block header, larger ones from malloc. See alloc.c. */
#ifndef SYNOSH_ALLOC_H
#define SYNOSH_ALLOC_H

#include <stddef.h>

/* Blocks up to this many bytes come from the size classes. */
#define ALLOC_SMALL_MAX 256

struct alloc_pool;

/* A lua_Alloc for lua_newstate, with the pool as its ud. */
void *alloc_lua(void *ud, void *block, size_t old_size, size_t new_size);

/* Creates an empty pool; NULL when out of memory. With use_classes false,
   alloc_lua passes every request to realloc and free, so memory checkers
   (valgrind, AddressSanitizer) see each Lua block by itself. */
struct alloc_pool *alloc_pool_new(int use_classes);

/* Frees the pool and its slabs. Call only after lua_close. */
void alloc_pool_free(struct alloc_pool *pool);

#endif
