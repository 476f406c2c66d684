/**
 * A rule in the target table: a prefix (a /128 is an exact address), an action,
 * and where it came from, so `explain` can say why an address is or isn't answered.
 */

export enum Action {
  /** Answer NS for targets under this prefix. */
  Answer = 1,
  /** Never answer for targets under this prefix (beats any shorter Answer prefix). */
  Exclude = 2,
}

/** Where a rule came from. */
export type RuleSource =
  | { readonly kind: 'static'; readonly flag: '--prefix' | '--address' | '--exclude' | 'config' }
  | {
      readonly kind: 'docker';
      readonly containerId: string;
      readonly containerName: string;
      readonly network: string;
    }
  /** One of the interface's own addresses: the kernel answers for those, we never do. */
  | { readonly kind: 'host'; readonly ifname: string };

export interface Rule {
  /** 16 bytes, the prefix with host bits zeroed. */
  readonly prefix: Uint8Array;
  /** Prefix length, 0..128. */
  readonly length: number;
  readonly action: Action;
  readonly source: RuleSource;
  /** Canonical text form (RFC 5952, as `formatCidr` prints it), e.g. `2003:ab11:0:0:8000::/66`. */
  readonly text: string;
}
