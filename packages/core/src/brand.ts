/**
 * Error identity across installed copies. An app may end up with two copies of `@idem/core` (a
 * store built against one version, an adapter against another; or the ESM and the CommonJS build
 * of the same version). A plain `instanceof` then fails between them: `RedisTimeoutError` from
 * one copy is not a `StoreError` of the other. Each exported error class is branded with a
 * global symbol (`Symbol.for`, shared by every copy in the process), and `instanceof` checks the
 * brand. The brand sits on the prototype, so subclasses of other copies carry it too.
 */

type AnyClass = abstract new (...args: never[]) => object;

/**
 * Brands `cls` as `id`: `value instanceof cls` is then true for any object built by a class
 * branded `id` (or a subclass of one), whichever copy of the package defined it. An unbranded
 * subclass keeps the ordinary `instanceof`: brand every exported class that crosses packages.
 */
export function brand(cls: AnyClass, id: string): void {
  const symbol = Symbol.for(`@idem/${id}`);
  Object.defineProperty(cls.prototype, symbol, { value: true });
  Object.defineProperty(cls, Symbol.hasInstance, {
    value: function hasBrand(this: AnyClass, value: unknown): boolean {
      // An unbranded subclass inherits this static method: it gets the ordinary prototype check,
      // or every instance of the branded parent would pass for one of it.
      if (this !== cls) return Function.prototype[Symbol.hasInstance].call(this, value);
      return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[symbol] === true;
    },
  });
}
