/* The allocator of synosh's Lua state.
 *
 * Lua passes its allocator the size of every block it frees or resizes, so
 * a block needs no header: small blocks (up to ALLOC_SMALL_MAX bytes) are cut
 * from 64 KiB slabs in size classes 8 bytes apart, and a freed block goes on
 * the free list of its class. glibc's malloc adds 8 bytes to each block and
 * rounds it up to 16, which for an image record (a table, its hash part and
 * a 71-byte id) is about 40 bytes of 400. Larger blocks (long strings, the
 * array of a long list) go to malloc as before.
 *
 * Caveats:
 * - Slabs are never given back before alloc_pool_free: memory freed by Lua
 *   stays in the free lists for later blocks of the same class.
 * - Small blocks are 8-byte aligned, which is what Lua needs (LUAI_MAXALIGN
 *   holds nothing wider than 8 bytes on the platforms synosh runs on). New
 *   userdata is 16-byte aligned, like malloc's blocks, because C code may
 *   put anything into it.
 * - Memory checkers cannot see inside a slab, so the sanitizer build and
 *   SYNOSH_MALLOC=system (which tests/valgrind sets) use malloc for every
 *   block. */
#include "alloc.h"

#include <lua.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GRAIN 8
#define CLASSES (ALLOC_SMALL_MAX / GRAIN)
#define SLAB_SIZE (64 * 1024)

struct free_block {
  struct free_block *next;
};

struct slab {
  struct slab *next;
};

struct alloc_pool {
  int use_classes;
  struct free_block *free_lists[CLASSES];
  char *bump;     /* the unused rest of the newest slab */
  char *bump_end;
  struct slab *slabs; /* every slab, newest first, for alloc_pool_free */
};

/* The class of a small size: 1..8 bytes is class 0, 9..16 class 1, ... */
static size_t class_of(size_t size) {
  return (size - 1) / GRAIN;
}

/* Cuts size bytes, aligned to align, from the newest slab, taking a new
   slab when the rest is too short. What is left of the old slab (less than
   ALLOC_SMALL_MAX + 8 bytes) is not used. */
static void *cut(struct alloc_pool *pool, size_t size, size_t align) {
  uintptr_t start = ((uintptr_t)pool->bump + align - 1) & ~(uintptr_t)(align - 1);
  if (pool->bump == NULL || start + size > (uintptr_t)pool->bump_end) {
    struct slab *slab = malloc(SLAB_SIZE);
    if (slab == NULL)
      return NULL;
    slab->next = pool->slabs;
    pool->slabs = slab;
    /* malloc's blocks are 16-byte aligned, and so is the header's end. */
    pool->bump = (char *)slab + 16;
    pool->bump_end = (char *)slab + SLAB_SIZE;
    start = (uintptr_t)pool->bump;
  }
  pool->bump = (char *)(start + size);
  return (void *)start;
}

static void *small_alloc(struct alloc_pool *pool, size_t size, int is_userdata) {
  size_t class = class_of(size);
  size_t rounded = (class + 1) * GRAIN;
  if (is_userdata)
    return cut(pool, rounded, 16);
  struct free_block *block = pool->free_lists[class];
  if (block != NULL) {
    pool->free_lists[class] = block->next;
    return block;
  }
  return cut(pool, rounded, GRAIN);
}

static void small_free(struct alloc_pool *pool, void *block, size_t size) {
  size_t class = class_of(size);
  struct free_block *freed = block;
  freed->next = pool->free_lists[class];
  pool->free_lists[class] = freed;
}

void *alloc_lua(void *ud, void *block, size_t old_size, size_t new_size) {
  struct alloc_pool *pool = ud;
  if (!pool->use_classes) {
    if (new_size == 0) {
      free(block);
      return NULL;
    }
    return realloc(block, new_size);
  }

  if (block == NULL) {
    if (new_size == 0)
      return NULL;
    if (new_size > ALLOC_SMALL_MAX)
      return malloc(new_size);
    /* For a new block Lua passes the type of the object in old_size. */
    return small_alloc(pool, new_size, old_size == LUA_TUSERDATA);
  }

  int was_small = old_size <= ALLOC_SMALL_MAX;
  if (new_size == 0) {
    if (was_small)
      small_free(pool, block, old_size);
    else
      free(block);
    return NULL;
  }
  int is_small = new_size <= ALLOC_SMALL_MAX;
  if (!was_small && !is_small)
    return realloc(block, new_size);
  if (was_small && is_small && class_of(old_size) == class_of(new_size))
    return block;

  void *moved = is_small ? small_alloc(pool, new_size, 0) : malloc(new_size);
  if (moved == NULL)
    return NULL; /* Lua keeps the old block */
  memcpy(moved, block, old_size < new_size ? old_size : new_size);
  if (was_small)
    small_free(pool, block, old_size);
  else
    free(block);
  return moved;
}

struct alloc_pool *alloc_pool_new(int use_classes) {
  struct alloc_pool *pool = calloc(1, sizeof *pool);
  if (pool != NULL)
    pool->use_classes = use_classes;
  return pool;
}

void alloc_pool_free(struct alloc_pool *pool) {
  if (pool == NULL)
    return;
  struct slab *slab = pool->slabs;
  while (slab != NULL) {
    struct slab *next = slab->next;
    free(slab);
    slab = next;
  }
  free(pool);
}
