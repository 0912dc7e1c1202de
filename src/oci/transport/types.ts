// The request and response shapes every transport layer passes along.
import type { Dispatcher } from 'undici';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RegistryRequest {
  /** Canonical registry name (docker.io, ghcr.io, 127.0.0.1:5000). */
  registry: string;
  /** Repository the request is about (for credentials scoped to a repository). */
  repository?: string;
  method: Method;
  /** A path below the registry ('/v2/…'), or an absolute URL the registry gave us (an upload Location). */
  path: string;
  /** Token scopes the request needs, e.g. 'repository:library/nginx:pull'. */
  scopes: string[];
  headers?: Record<string, string>;
  /** The body, made fresh for each attempt; a stream that cannot be made again is sent once. */
  body?: Buffer | (() => Dispatcher.DispatchOptions['body']);
  /** False when the body is a one-shot stream: no retry, no re-send after a 401. */
  replayable?: boolean;
  followRedirects?: boolean;
  /** Statuses the caller handles itself, so they are not retried or turned into errors. */
  accept?: number[];
  /** A long request (an upload): fresh token and a generous wait for the registry's answer. */
  long?: boolean;
  signal?: AbortSignal;
}

export interface RegistryResponse {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered, after redirects. */
  url: URL;
  /** The proxy the answer came through, if any (for messages). */
  proxy?: URL;
}

/** One attempt at a request, as each layer hands it to the next. */
export type Send = (request: RegistryRequest) => Promise<RegistryResponse>;
