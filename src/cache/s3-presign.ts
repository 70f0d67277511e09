import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

export interface PresignOptions {
  /** The bucket's address as the store reaches it (absent: AWS in `region`). */
  endpoint?: string;
  /** The bucket's address as clients reach it, when it differs: URLs are signed for this host. */
  publicEndpoint?: string;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** Every presigned answer is a plain download, whatever Content-Type the object was stored with. */
const CONTENT_TYPE = 'application/octet-stream';

/**
 * Presigned GetObject URLs (SigV4 query signing: local CPU, no request). `client` is the store's own, used unless
 * clients reach the bucket elsewhere: then a client that only signs, for the public endpoint, never sends.
 * Checksums stay off as on the store's client, so the only signed header is Host: a client following the URL
 * needs to send nothing but a plain GET (with Range when it wants one: the bucket honours it).
 */
export function createPresigner(client: S3Client, opts: PresignOptions): (objectKey: string, ttlSeconds: number) => Promise<string> {
  const signer = opts.publicEndpoint
    ? new S3Client({
        endpoint: opts.publicEndpoint,
        region: opts.region,
        forcePathStyle: opts.forcePathStyle,
        credentials: opts.credentials,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      })
    : client;
  return (objectKey, ttlSeconds) =>
    getSignedUrl(signer, new GetObjectCommand({ Bucket: opts.bucket, Key: objectKey, ResponseContentType: CONTENT_TYPE }), { expiresIn: ttlSeconds });
}
