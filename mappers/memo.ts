/**
 * The memo the mappers keep of pure functions (resource ids, times read, validation verdicts): bounded, and cheap to
 * keep bounded. Two generations of at most `capacity` entries each: when the current one is full it becomes the
 * previous one and a new one starts; what is found in the previous one moves to the current one, so what is used
 * stays and what is not is dropped a generation later.
 *
 * Not a Map trimmed oldest-first (`delete(keys().next().value)`): V8 leaves a deleted entry's slot in place until the
 * table is rebuilt, and finding the oldest entry then walks every slot deleted before it, so that a full memo of
 * keys never seen again (every message's own times and ids) costs microseconds on each insertion.
 */
export class BoundedMemo<K, V extends NonNullable<unknown>> {
  /** Entries per generation; the memo holds at most twice as many. */
  readonly capacity: number;
  #current = new Map<K, V>();
  #previous = new Map<K, V>();

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get(key: K): V | undefined {
    const value = this.#current.get(key);
    if (value !== undefined) return value;
    const older = this.#previous.get(key);
    if (older !== undefined) this.set(key, older);
    return older;
  }

  set(key: K, value: V): void {
    if (this.#current.size >= this.capacity && !this.#current.has(key)) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(key, value);
  }
}
