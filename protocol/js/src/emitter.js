// A small typed event emitter: `on(type, listener)` returns the function that removes it.
//
// A listener that throws does not stop the others or the caller: the error is rethrown
// on a fresh task, where the platform reports it (window `error`, Node's uncaught
// exception), so the SDK's own state stays consistent.

/** @template {Record<string, unknown[]>} Events */
export class Emitter {
  constructor() {
    /** @type {Map<keyof Events, Set<(...args: any[]) => void>>} */
    this.listeners = new Map();
  }

  /**
   * @template {keyof Events} K
   * @param {K} type
   * @param {(...args: Events[K]) => void} listener
   * @returns {() => void} removes the listener
   */
  on(type, listener) {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => this.off(type, listener);
  }

  /**
   * @template {keyof Events} K
   * @param {K} type
   * @param {(...args: Events[K]) => void} listener
   */
  off(type, listener) {
    this.listeners.get(type)?.delete(listener);
  }

  /**
   * @template {keyof Events} K
   * @param {K} type
   * @param {Events[K]} args
   */
  emit(type, ...args) {
    const set = this.listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (e) {
        setTimeout(() => {
          throw e;
        }, 0);
      }
    }
  }
}
