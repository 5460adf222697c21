/**
 * How much memory a value holds, estimated, for an L1 bounded by bytes (`l1.maxBytes`). An
 * estimate errs high rather than low, so that the bound holds: strings count two bytes a
 * character (V8 may use one), Buffers and typed arrays their bytes, numbers eight, and every
 * object, array slot and property name its own overhead. A value reached twice counts once; cycles
 * end the walk. The walk is iterative, so a deep value cannot overflow the stack.
 * @internal
 */

/** What an entry costs around its value: the entry object, its times, the LRU's node. */
const ENTRY_OVERHEAD = 96;
const OBJECT_OVERHEAD = 32;
const SLOT = 8;

/** The estimated bytes of `value`. */
export function estimateSize(value: unknown): number {
  let total = 0;
  const seen = new Set<object>();
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    switch (typeof item) {
      case 'string':
        total += 2 * item.length + 16;
        continue;
      case 'number':
        total += 8;
        continue;
      case 'boolean':
        total += 4;
        continue;
      case 'bigint':
        total += 16;
        continue;
      case 'object':
        break;
      default:
        // undefined, functions and symbols: the slot that holds them is counted by their holder.
        continue;
    }
    if (item === null || seen.has(item)) continue;
    seen.add(item);
    if (ArrayBuffer.isView(item)) {
      total += item.byteLength + OBJECT_OVERHEAD;
    } else if (item instanceof ArrayBuffer) {
      total += item.byteLength + OBJECT_OVERHEAD;
    } else if (Array.isArray(item)) {
      total += OBJECT_OVERHEAD + SLOT * item.length;
      for (const element of item) stack.push(element);
    } else if (item instanceof Map) {
      total += OBJECT_OVERHEAD + 2 * SLOT * item.size;
      for (const [k, v] of item) stack.push(k, v);
    } else if (item instanceof Set) {
      total += OBJECT_OVERHEAD + SLOT * item.size;
      for (const v of item) stack.push(v);
    } else if (item instanceof Date) {
      total += OBJECT_OVERHEAD;
    } else {
      total += OBJECT_OVERHEAD;
      for (const key of Object.keys(item)) {
        total += SLOT + 2 * key.length;
        stack.push((item as Record<string, unknown>)[key]);
      }
    }
  }
  return total;
}

/**
 * The size an L1 entry is charged: its value by `sizeOf` (an answer that is not a finite number
 * of zero or more falls back to the estimate), its key and tags, and the entry's overhead. Always
 * a positive integer, as lru-cache requires.
 */
export function entrySize(
  value: unknown,
  key: string,
  tags: readonly string[],
  sizeOf: ((value: unknown, key: string) => number) | undefined,
): number {
  let size = sizeOf === undefined ? Number.NaN : sizeOf(value, key);
  if (!Number.isFinite(size) || size < 0) size = estimateSize(value);
  for (const tag of tags) size += 2 * tag.length + SLOT;
  return Math.max(1, Math.ceil(size + 2 * key.length + ENTRY_OVERHEAD));
}
