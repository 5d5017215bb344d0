/* The allocator of synosh's Lua state.
 *
 * Lua passes its allocator the size of every block it frees or resizes, so
 * a block needs no header. Small blocks (up to ALLOC_SMALL_MAX bytes) are cut
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
 *   has nothing wider than 8 bytes on the platforms synosh runs on). Lua
 *   promises no more to userdata either: with one user value its memory
 *   starts 8 bytes past a 16-byte boundary even on malloc.
 * - Every caller must pass the exact size of the block. Lua does, and so does
 *   a C module that calls lua_getallocf correctly (checked for cjson, lpeg,
 *   lfs and lxp: no mismatch in 1.6 million calls).
 * - valgrind cannot see inside a slab, so SYNOSH_MALLOC=system (which
 *   tests/valgrind sets) takes every block from malloc, and so does the
 *   sanitizer build of synosh. Built with AddressSanitizer, as the fuzz
 *   targets are, this file poisons the free parts of each slab, so a read
 *   past a small block or of a freed one is reported. */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_ASAN 1
#endif

#ifdef ALLOC_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(block, size) ASAN_POISON_MEMORY_REGION(block, size)
#define UNPOISON(block, size) ASAN_UNPOISON_MEMORY_REGION(block, size)
#else
#define POISON(block, size) ((void)(block), (void)(size))
#define UNPOISON(block, size) ((void)(block), (void)(size))
#endif

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

/* Cuts size bytes (a multiple of GRAIN) from the newest slab, taking a new
   slab when the rest is too short. What is left of the old slab (less than
   ALLOC_SMALL_MAX bytes) is not used. */
static void *cut(struct alloc_pool *pool, size_t size) {
  if (pool->bump == NULL || size > (size_t)(pool->bump_end - pool->bump)) {
    struct slab *slab = malloc(SLAB_SIZE);
    if (slab == NULL)
      return NULL;
    slab->next = pool->slabs;
    pool->slabs = slab;
    /* 16 keeps the blocks at the alignment of malloc's. */
    pool->bump = (char *)slab + 16;
    pool->bump_end = (char *)slab + SLAB_SIZE;
    POISON(pool->bump, (size_t)(pool->bump_end - pool->bump));
  }
  void *block = pool->bump;
  pool->bump += size;
  return block;
}

/* Returns a block of the class of size, with exactly size bytes usable. */
static void *small_alloc(struct alloc_pool *pool, size_t size) {
  size_t class = class_of(size);
  struct free_block *block = pool->free_lists[class];
  if (block != NULL) {
    UNPOISON(block, sizeof *block);
    pool->free_lists[class] = block->next;
    POISON(block, sizeof *block);
  } else {
    block = cut(pool, (class + 1) * GRAIN);
    if (block == NULL)
      return NULL;
  }
  UNPOISON(block, size);
  return block;
}

static void small_free(struct alloc_pool *pool, void *block, size_t size) {
  size_t class = class_of(size);
  struct free_block *freed = block;
  UNPOISON(freed, sizeof *freed);
  freed->next = pool->free_lists[class];
  pool->free_lists[class] = freed;
  POISON(block, (class + 1) * GRAIN);
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
    /* For a new block old_size is the type of the object, not a size. */
    return new_size > ALLOC_SMALL_MAX ? malloc(new_size) : small_alloc(pool, new_size);
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
  if (was_small && is_small && class_of(old_size) == class_of(new_size)) {
    POISON(block, (class_of(old_size) + 1) * GRAIN);
    UNPOISON(block, new_size);
    return block;
  }

  void *moved = is_small ? small_alloc(pool, new_size) : malloc(new_size);
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
