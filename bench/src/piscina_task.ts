// The piscina side of the task rows: the same trivial task as Ray's
// small_value (a no-op returning a small value), run in a piscina worker.
export default function smallValue(): string {
  return 'ok';
}
