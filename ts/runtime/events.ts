// Event dispatch: the core queues events for this process's JS thread and
// calls onEvents; dispatchEvents drains them and hands each to the part of
// the runtime it concerns (ready objects, tasks to execute, generator
// items, cluster call replies, cancels, GC and recovery requests).
import { eventTypes } from './native.js';
import { recoverForBorrower } from './ownership.js';
import type { Runtime } from './runtime.js';

export function dispatchEvents(rt: Runtime): void {
  if (rt.closed) return;
  const events = rt.core.drainEvents();
  const EventType = eventTypes();
  for (const ev of events) {
    if (typeof ev === 'string') { // Ready: the object's key
      rt.waiting.ready(ev);
      continue;
    }
    switch (ev.t) {
      case EventType.Execute:
        rt.onExecute?.(ev);
        break;
      case EventType.GenItem:
        rt.generators.item(ev);
        break;
      case EventType.GenEnd:
        rt.generators.end(ev);
        break;
      case EventType.Gcs:
        rt.gcsReply(ev);
        break;
      case EventType.Cancel:
        rt.onCancel?.(ev);
        break;
      case EventType.TriggerGc:
        rt.pressure.collectGarbage();
        break;
      case EventType.Local: // ray.wait fetchLocal: the object is on this node now
        rt.waiting.local(ev.key as string);
        break;
      case EventType.RecoverObject: // a borrower lost the plasma copy of an object we own
        recoverForBorrower(rt.core, ev.id as Uint8Array);
        break;
    }
  }
}
