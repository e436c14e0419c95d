import type { Page } from "@replicant/protocol";

/**
 * What every list method returns: await it for the first page (`{ next, previous, results }`, as the
 * `replicate` package returns), or iterate it with `for await` to get every item of every page.
 * Nothing is requested until you do either, and the first page is fetched once.
 */
export class PagePromise<T> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  #firstPage: Promise<Page<T>> | undefined;
  readonly #fetchFirst: () => Promise<Page<T>>;
  readonly #fetchNext: (url: string) => Promise<Page<T>>;

  constructor(fetchFirst: () => Promise<Page<T>>, fetchNext: (url: string) => Promise<Page<T>>) {
    this.#fetchFirst = fetchFirst;
    this.#fetchNext = fetchNext;
  }

  #first(): Promise<Page<T>> {
    this.#firstPage ??= this.#fetchFirst();
    return this.#firstPage;
  }

  // biome-ignore lint/suspicious/noThenProperty: a thenable by design, so `await list()` gives the first page.
  then<TResult1 = Page<T>, TResult2 = never>(
    onFulfilled?: ((page: Page<T>) => TResult1 | PromiseLike<TResult1>) | null,
    onRejected?: ((reason: unknown) => TResult2 | PromiseLike<TResult2>) | null,
  ): Promise<TResult1 | TResult2> {
    return this.#first().then(onFulfilled, onRejected);
  }

  catch<TResult = never>(
    onRejected?: ((reason: unknown) => TResult | PromiseLike<TResult>) | null,
  ): Promise<Page<T> | TResult> {
    return this.#first().catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<Page<T>> {
    return this.#first().finally(onFinally);
  }

  /** Every page, following `next` until it is null. */
  async *iterPages(): AsyncGenerator<Page<T>, void, undefined> {
    let page = await this.#first();
    yield page;
    while (page.next) {
      page = await this.#fetchNext(page.next);
      yield page;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.iterPages()) yield* page.results;
  }

  /** Collects items across pages, stopping after `limit` items if given. */
  async toArray(limit = Number.POSITIVE_INFINITY): Promise<T[]> {
    const items: T[] = [];
    if (limit <= 0) return items;
    for await (const item of this) {
      items.push(item);
      if (items.length >= limit) break;
    }
    return items;
  }

  get [Symbol.toStringTag](): string {
    return "PagePromise";
  }
}
