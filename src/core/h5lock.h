/* h5lock.h - (private) one lock around the HDF5 library for the whole process.
 *
 * Debian's parallel HDF5 is built without its thread-safe option, so two
 * threads must never be inside the library at once. Rank 0's checkpoint
 * writer and every rank's streaming reader run HDF5 on threads of their own;
 * each holds this lock for the calls it makes. The main thread takes it too
 * whenever one of those threads may be running. */
#ifndef DPTRAIN_H5LOCK_H
#define DPTRAIN_H5LOCK_H

/* Blocks until the calling thread holds the lock. Not recursive. */
void dp_h5_lock(void);

/* Releases the lock the calling thread holds. */
void dp_h5_unlock(void);

#endif
