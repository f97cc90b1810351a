/**
 * Plain V8 stack traces in the Pulumi program.
 *
 * Why: Pulumi's Node.js language host registers source-map-support before it loads the program,
 * and every resource constructor records an unlimited-depth `new Error().stack` (its source
 * position and stack trace, sent with the registration). With source-map-support each of those
 * stacks is rewritten through the source maps of every frame: measured here, 450 stacks took
 * 822 ms with it and 54 ms without, and a no-op `strata up` of 200 layers spent 9.3 CPU-s on the
 * Pulumi side with it against 7.9 without (the language host 6.0 → 4.6). The stacks only give a
 * resource's source position, which then names the compiled dist/*.js line instead of the
 * TypeScript one; Strata's own errors are paragraphs that name the file and field, not a frame.
 */
export function usePlainStackTraces(): void {
  Reflect.deleteProperty(Error, "prepareStackTrace");
}
