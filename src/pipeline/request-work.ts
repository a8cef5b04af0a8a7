// The one abort signal a request's work listens to (body read, queue wait, backend call,
// a coalesced follower's wait). It is created only when something first needs it, so a
// cache hit or a refused request creates no AbortController and no timer. One timer
// watches the route's deadline; the client leaving aborts the work too, except while the
// request leads a coalesced flight that others still want (the flight asks `stillWanted`).
//
// Why not AbortSignal.any: it is slow per request and, on Node 20, leaks when one of its
// sources lives long (nodejs/node#55351); undici declined it for the same reason.
import { SluiceError } from '../errors.js';

export class RequestWork {
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private deadlineAt = Infinity;
  private deadlineReason: (() => SluiceError) | undefined;
  private stillWanted: (() => boolean) | undefined;
  private clientController: AbortController | undefined;
  /** True once the client went away before its response was complete. */
  clientGone = false;

  /** Sets the deadline (the route's total timeout); arms the timer only if the signal exists. */
  setDeadline(deadlineAt: number, reason: () => SluiceError): void {
    this.deadlineAt = deadlineAt;
    this.deadlineReason = reason;
    if (this.controller) this.arm();
  }

  /** Aborted when the deadline passes, or when the client leaves and nobody else wants the answer. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.clientGone && !this.stillWanted?.()) this.abort(new SluiceError('client_closed'));
      else this.arm();
    }
    return this.controller.signal;
  }

  /**
   * Aborted only when the client leaves; for waits whose own length is already bounded by
   * the deadline (a job held for its result, a long-poll), where a deadline abort would race
   * the wait's own end. Created on first use.
   */
  get clientSignal(): AbortSignal {
    if (!this.clientController) {
      this.clientController = new AbortController();
      if (this.clientGone) this.clientController.abort(new SluiceError('client_closed'));
    }
    return this.clientController.signal;
  }

  /** While this request leads a coalesced flight: its client leaving ends the work only when `wanted()` is false. */
  keepWhile(wanted: (() => boolean) | undefined): void {
    this.stillWanted = wanted;
  }

  /** The response's socket closed before the response was complete. */
  clientLeft(): void {
    if (this.clientGone) return;
    this.clientGone = true;
    this.clientController?.abort(new SluiceError('client_closed'));
    if (this.controller && !this.stillWanted?.()) this.abort(new SluiceError('client_closed'));
  }

  abort(reason: SluiceError): void {
    clearTimeout(this.timer);
    this.controller?.abort(reason);
  }

  /** Clears the deadline timer; called once the request is answered. */
  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (!Number.isFinite(this.deadlineAt) || this.controller!.signal.aborted) return;
    const reason = this.deadlineReason!;
    const remaining = this.deadlineAt - performance.now();
    if (remaining <= 0) this.abort(reason());
    else this.timer = setTimeout(() => this.abort(reason()), remaining);
  }
}
