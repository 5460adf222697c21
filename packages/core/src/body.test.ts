import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { chunkBytes, readUpTo } from './body.js';

async function all(iterable: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

describe('readUpTo', () => {
  it('reads a Node stream of strings, Buffers and Uint8Arrays whole within the cap', async () => {
    const read = await readUpTo(Readable.from(['ab', Buffer.from('cd'), new Uint8Array([101, 102])]), 6);
    expect(read).toEqual({ bytes: Buffer.from('abcdef') });
  });

  it('reads a web stream too', async () => {
    const stream = new Blob(['hello ', 'web']).stream();
    expect(await readUpTo(stream as AsyncIterable<Uint8Array>, 100)).toEqual({ bytes: Buffer.from('hello web') });
  });

  it('past the cap gives every byte back, what was read and the rest of the source, in order', async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<string> {
      for (const part of ['one,', 'two,', 'three,', 'four']) {
        pulled++;
        yield part;
      }
    }
    const read = await readUpTo(source(), 5);
    expect('rest' in read).toBe(true);
    expect(pulled).toBe(2); // it stopped reading at the cap
    expect(await all((read as { rest: AsyncIterable<Buffer> }).rest)).toBe('one,two,three,four');
  });

  it('an empty source is an empty body', async () => {
    expect(await readUpTo(Readable.from([]), 0)).toEqual({ bytes: Buffer.alloc(0) });
  });

  it('refuses a chunk that is not bytes', () => {
    expect(() => chunkBytes(42)).toThrow(TypeError);
  });
});
