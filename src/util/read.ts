// Reading a response body whole, with a cap: registries and token servers are not trusted to send
// a reasonable amount, so a body past the cap is cut off (and its stream destroyed), never buffered.

/** The whole body, or undefined when it is longer than `limit` bytes. */
export async function readCapped(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
