import { close, fstat, open, read } from 'node:fs';
import type { ByteReader } from './blob-store.js';

/**
 * Random access to an open file by positional reads on its descriptor (off the event loop). `owned`: close()
 * closes the descriptor; else its owner (a blob writer checking its temp file) closes it itself.
 */
export function fdByteReader(fd: number, size: number, owned: boolean): ByteReader {
  return {
    size,
    read: (position, length) =>
      new Promise<Buffer>((resolve, reject) => {
        const n = Math.max(0, Math.min(length, size - position));
        const buf = Buffer.alloc(n);
        if (n === 0) return resolve(buf);
        read(fd, buf, 0, n, position, (err, got) => (err ? reject(err) : resolve(got === n ? buf : buf.subarray(0, got))));
      }),
    close: () => (owned ? new Promise<void>((resolve) => close(fd, () => resolve())) : Promise.resolve()),
  };
}

/**
 * A ByteReader over a file outside the store (a pushed package's scratch copy, a bundle's staged file): the
 * content checks speak ByteReader, whatever holds the bytes. Rejects (ENOENT) when there is no such file.
 */
export function openFileReader(path: string): Promise<ByteReader> {
  return new Promise((resolve, reject) =>
    open(path, 'r', (err, fd) => {
      if (err) return reject(err);
      fstat(fd, (serr, st) => {
        if (serr) return close(fd, () => reject(serr));
        resolve(fdByteReader(fd, st.size, true));
      });
    }),
  );
}
