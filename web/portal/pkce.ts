/**
 * PKCE (RFC 7636) and `state` for the portal's sign-in, with Web Crypto only: the portal is a public client and holds
 * no secret, so the code it gets back is worth nothing to anyone without the verifier that stays in this tab.
 */
import { bytesToBase64Url } from '../../anchor/index.ts';

/** 32 random bytes: a 43-character verifier, the shortest RFC 7636 allows and as strong as it needs to be. */
export function randomToken(bytes = 32): string {
  return bytesToBase64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** The S256 challenge of a verifier: base64url(SHA-256(ASCII(verifier))), unpadded. */
export async function s256Challenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return bytesToBase64Url(new Uint8Array(digest));
}
