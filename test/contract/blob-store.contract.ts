// Conformance suite for the blob store (src/cache/blob-store.ts) and the SharedDownload built on its writers.
// FsBlobStore is the only backend today; another backend joins by providing a BlobStoreFixture and calling
// blobStoreContract. Nothing here looks at how a backend keeps its bytes: only the interface and the fixture's
// own view of the backend (listAll, readBlob, plantLeftovers). The parts live in blob-store-*.contract.ts.
import { afterEach, beforeEach, describe } from 'vitest';
import { readsContract } from './blob-store-reads.contract.js';
import { sharedDownloadContract } from './blob-store-shared.contract.js';
import type { BlobStoreFixture, BlobStoreUnderTest } from './blob-store.support.js';
import { writerContract } from './blob-store-writer.contract.js';

export { BAD_KEYS, readAll, sha512b64, type BlobStoreFixture, type BlobStoreUnderTest } from './blob-store.support.js';

export function blobStoreContract(name: string, make: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let fx: BlobStoreFixture;
    let store: BlobStoreUnderTest;
    beforeEach(async () => {
      fx = await make();
      store = fx.store;
    });
    afterEach(async () => {
      await fx.cleanup();
    });
    const ctx = { fx: () => fx, store: () => store };
    writerContract(ctx);
    readsContract(ctx);
    sharedDownloadContract(ctx);
  });
}
