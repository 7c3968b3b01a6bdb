/**
 * A bounded map for the store's in-memory caches (data keys, consents, blind-index hashes): at most about `capacity`
 * entries, cheap to keep bounded. Two generations of at most `capacity` entries each: when the current one is full it
 * becomes the previous one and a new one starts; an entry found in the previous one moves to the current one, so what
 * is used stays and what is not is dropped a generation later.
 *
 * Not one Map trimmed oldest-first (`delete(keys().next().value)`), nor one refreshed on each hit (delete, then set):
 * V8 leaves a deleted entry's slot in place until the table is rebuilt, and finding the oldest entry walks every slot
 * deleted before it, so a full cache of keys seen once (a worker mapping new patients) paid for that walk on every
 * insertion. The mappers keep the same structure (mappers/memo.ts); the folders may not import each other.
 */
export class BoundedCache<K, V> {
  /** Entries per generation; the cache holds at most twice as many. */
  readonly capacity: number;
  #current = new Map<K, V>();
  #previous = new Map<K, V>();

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity);
  }

  get(key: K): V | undefined {
    if (this.#current.has(key)) return this.#current.get(key);
    if (!this.#previous.has(key)) return undefined;
    const value = this.#previous.get(key)!;
    this.#previous.delete(key);
    this.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    if (this.#current.size >= this.capacity && !this.#current.has(key)) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(key, value);
  }

  delete(key: K): void {
    this.#current.delete(key);
    this.#previous.delete(key);
  }

  clear(): void {
    this.#current = new Map();
    this.#previous = new Map();
  }

  /** Entries held now (both generations). */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }
}
