// The one place @peculiar/x509 is set up. tsyringe (its dependency injection) needs the Reflect metadata API
// before the library module runs, so this import comes first; the library signs through node's WebCrypto.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
