#ifndef QTOOLS_IMAGECODECS_H
#define QTOOLS_IMAGECODECS_H

#include <stddef.h>

/// Decodes a JPEG (libjpeg-turbo) or PNG (libpng) image, recognised by its first bytes, to
/// 8-bit RGB rows (height x width x 3), as Pillow's `Image.open(f).convert('RGB')` gives it:
/// greyscale replicated, palettes expanded, alpha dropped, 16-bit samples cut to their high
/// byte, Adobe CMYK JPEGs converted with Pillow's formula. A truncated JPEG decodes as far as
/// its data goes (libjpeg's tolerance, as Pillow's LOAD_TRUNCATED_IMAGES).
///
/// On success returns 0 and sets *pixels (free with qt_image_free), *width and *height; on
/// failure returns non-zero with a message in err (at most errlen bytes, NUL-terminated).
/// Images of more than max_pixels pixels are refused before any pixel buffer is allocated.
int qt_image_decode(const unsigned char *data, size_t size, size_t max_pixels, unsigned char **pixels,
                    int *width, int *height, char *err, size_t errlen);

/// Frees what qt_image_decode returned.
void qt_image_free(unsigned char *pixels);

#endif
