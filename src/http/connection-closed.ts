// Tells the requests of one connection that it closed. A plain object with a listener
// list: it is made once per busy period of every keep-alive connection, where an
// AbortController (an EventTarget) cost measurably more per request.
const NOTHING = (): void => {};

export class ConnectionClosed {
  private listeners: Array<() => void> | undefined;
  /** True once the connection has closed (or was refused). */
  closed = false;

  /** Calls `listener` once when the connection closes, at once if it has; returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    if (this.closed) {
      listener();
      return NOTHING;
    }
    (this.listeners ??= []).push(listener);
    return () => {
      const i = this.listeners?.indexOf(listener) ?? -1;
      if (i >= 0) this.listeners!.splice(i, 1);
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    for (const listener of listeners ?? []) listener();
  }
}
